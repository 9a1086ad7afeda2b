"""Finding a model by the name a user gives: a folder, the name of a model shipped under models/, or
`default`, which names each kind's shipped model. The one place every loader (IDM, planner, BC) resolves."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from vid2act.errors import Vid2ActError

# what `default` names, per kind; "plan-idm" is the IDM that reads a planner's drawings (`vid2act train idm
# --planner`), the default where an IDM reads a plan: translating a plan folder, and the plan policy
DEFAULTS = {"idm": "idm-rgbd", "plan-idm": "idm-plans-rgbd", "planner": "planner-rgbd", "bc": "bc-rgbd"}
KINDS = {"idm": "IDM", "plan-idm": "plan-reading IDM", "planner": "planner", "bc": "behavior-cloning policy"}
TRAIN = {"idm": "vid2act train idm", "plan-idm": "vid2act train idm --planner PLANNER",
         "planner": "vid2act train video",
         "bc": "vid2act train bc"}


def resolve(reference: str, kind: str) -> Path:
    """A path, or the name of a shipped model under models/ ('default' for the shipped model of `kind`)."""
    path = Path(reference)
    if path.exists():
        return path
    name = DEFAULTS[kind] if reference == "default" else reference
    shipped = root() / name
    if "/" not in name and shipped.exists():
        return shipped
    if reference == "default":
        raise Vid2ActError(f"no {KINDS[kind]} ships with this vid2act (the default would be models/{name}); make one "
                           f"with `{TRAIN[kind]} --data DATA --out RUN` and give RUN instead of default")
    raise Vid2ActError(f"no model at {reference!r} (neither a folder nor a shipped model name; shipped: "
                       f"{', '.join(names()) or 'none'})")


def path_of(reference: str, kind: str) -> Path:
    """Where `reference` points, whether or not a model is there: its folder, or the path as given."""
    try:
        return resolve(reference, kind)
    except Vid2ActError:
        return Path(reference)


def root() -> Path:
    return Path(str(resources.files("vid2act.models")))


def names() -> list[str]:
    """The shipped models' names."""
    return sorted(p.name for p in root().iterdir()
                  if (p / "config.json").exists() or (p / "model_index.json").exists())
