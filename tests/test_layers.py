"""The library's layers: the import-linter contract in pyproject.toml (layers listed once) is kept and covers
every module, the library never imports the commands, and the low modules load neither torch, PyBullet nor
Gymnasium."""
import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def layers() -> list[str]:
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    return [name.strip() for layer in contract["layers"] for name in layer.split("|")]


def library_modules() -> list[str]:
    """Every module of vid2act/ but the packages' own __init__ files (containers)."""
    found = []
    for path in (ROOT / "vid2act").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] != "__init__":
            found.append(".".join(parts))
    return sorted(found)


def test_the_layer_contract_is_kept():
    run = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], capture_output=True, text=True,
                         cwd=ROOT)
    assert run.returncode == 0 and "Contracts: 1 kept, 0 broken." in run.stdout, run.stdout[-3000:]


def test_every_module_lies_in_a_layer():
    listed = layers()
    outside = [m for m in library_modules() if not any(m == layer or m.startswith(layer + ".") for layer in listed)]
    assert outside == []


def test_the_library_never_imports_the_commands():
    for path in (ROOT / "vid2act").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.startswith("vid2act.cli") for n in names), path


@pytest.mark.parametrize("module", ["vid2act", "vid2act.outputs", "vid2act.media", "vid2act.formats",
                                    "vid2act.configs", "vid2act.cli.main"])
def test_low_modules_and_the_command_line_load_no_heavy_library(module):
    code = (f"import sys, {module}; print(sorted(m for m in ('torch', 'diffusers', 'pybullet', 'gymnasium') "
            "if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
