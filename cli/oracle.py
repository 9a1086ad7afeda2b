from __future__ import annotations

from pathlib import Path

import typer

from vid2act.cli.common import FORCE_HELP, console, emit, handle_errors


@handle_errors
def oracle(
    scene_dir: Path = typer.Argument(..., help="Scene folder (from `vid2act scene`)."),
    out: str = typer.Option(..., "--out", "-o", help="Actions file to write; - for stdout."),
    force: bool = typer.Option(False, "--force", "-f", help=FORCE_HELP),
) -> None:
    """Write the scripted expert's actions for a scene. Prints the actions file's path."""
    from vid2act.formats import read_scene, write_actions
    from vid2act.outputs import STDIO, check_apart, check_can_write
    from vid2act.sim.env import SceneWorld

    check_apart({"--out": out}, {"SCENE": scene_dir})
    document = read_scene(scene_dir)
    if out != STDIO:
        check_can_write(Path(out), force)
    with SceneWorld(document) as env:
        rollout = env.run_oracle()
    source = {"policy": "oracle", "scene": str(scene_dir), "task": document["task"], "seed": document["seed"],
              "oracle_success": rollout.success}
    if not rollout.success:
        console.print(f"[yellow]warning:[/] the oracle did not solve this scene ({rollout.distances})")
    write_actions(out, rollout.actions, source, force)
    console.print(f"{len(rollout.actions)} actions for: {document['instruction']}")
    if out != STDIO:
        emit(out)
