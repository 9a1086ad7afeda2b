"""The `vid2act` application: registers every command and is the console script's entry point."""
from __future__ import annotations

import os
import sys

import typer

from vid2act.cli import (collect, demo, eval as eval_cli, execute, generate, interop, oracle, scene, tasks, train,
                         translate, view)
from vid2act.cli.common import OneLineErrors

app = typer.Typer(
    cls=OneLineErrors,
    name="vid2act",
    help="Robot control as video generation: scenes, demonstrations, plans, actions, rollouts.\n\n"
         "Every stage reads and writes files, so stages chain in shell scripts. Results go to stdout "
         "(paths or JSON), progress and messages to stderr. Exit codes: 0 ok, 1 runtime error, 2 bad usage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from vid2act.version import __version__
        typer.echo(f"vid2act {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Robot control as video generation."""


app.command("tasks")(tasks.tasks)
app.command("scene")(scene.scene)
app.command("oracle")(oracle.oracle)
app.command("execute")(execute.execute)
app.command("collect")(collect.collect)
app.add_typer(train.app, name="train")
app.command("generate")(generate.generate)
app.command("translate")(translate.translate)
app.command("eval")(eval_cli.eval_command)
app.command("demo")(demo.demo)
app.command("view")(view.view)
app.add_typer(interop.export_app, name="export")
app.add_typer(interop.import_app, name="import")


def main() -> None:
    # C libraries (PyBullet) chatter on file descriptor 1. Keep the real stdout for machine output alone, so
    # `vid2act ... | jq` always reads clean JSON; the chatter goes to stderr with VID2ACT_DEBUG=1, else nowhere.
    sys.stdout.flush()
    machine_stdout = os.dup(1)
    chatter = os.dup(2) if os.environ.get("VID2ACT_DEBUG") == "1" else os.open(os.devnull, os.O_WRONLY)
    os.dup2(chatter, 1)
    os.close(chatter)
    sys.stdout = os.fdopen(machine_stdout, "w")
    app()
