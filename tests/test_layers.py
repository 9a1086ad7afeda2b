"""The library's layers: a format module does not need the simulator, and the command line starts without
loading torch or diffusers (every command's options come from vid2act/configs.py, which imports neither)."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def vid2act_imports(path: Path) -> set[str]:
    """Every vid2act module `path` imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vid2act"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("vid2act")}
    return found


@pytest.mark.parametrize("module,allowed", [
    ("vid2act/spec.py", set()),
    ("vid2act/errors.py", set()),
    ("vid2act/options.py", set()),
    ("vid2act/files.py", {"vid2act.errors", "vid2act.spec"}),
    ("vid2act/shipped.py", {"vid2act.errors"}),
])
def test_low_layers_import_only_lower_ones(module, allowed):
    assert vid2act_imports(ROOT / module) <= allowed


def test_the_command_line_starts_without_torch():
    code = "import sys, vid2act.cli.main; print(sorted(m for m in ('torch', 'diffusers') if m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
