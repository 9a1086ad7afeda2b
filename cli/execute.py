from __future__ import annotations

from pathlib import Path

import typer

from vid2act.cli.common import FORCE_HELP, console, emit, handle_errors


@handle_errors
def execute(
    actions: str = typer.Argument(..., help="Actions file (from `vid2act oracle` or `translate`); - for stdin."),
    scene_dir: Path = typer.Option(..., "--scene", help="Scene folder the actions start from."),
    out: Path = typer.Option(..., "--out", "-o", help="Rollout folder to write."),
    force: bool = typer.Option(False, "--force", "-f", help=FORCE_HELP),
) -> None:
    """Run actions from a scene: result.json, frames.npz and rollout.mp4. Prints the result JSON."""
    from vid2act.files import (check_can_write, output_dir, read_actions, read_scene, result_document, write_frames,
                               write_json, write_video)
    from vid2act.sim.env import Env
    from vid2act.sim.world import FPS

    document = read_scene(scene_dir)
    values, actions_document = read_actions(actions)
    check_can_write(out, force)
    with Env(document) as env:
        rollout = env.run(values)
    result = result_document(document, rollout, actions_source=actions_document.get("source"),
                             scene_dir=scene_dir)
    with output_dir(out, force) as tmp:
        write_json(tmp / "result.json", result)
        write_frames(tmp, rollout.rgb, rollout.depth)
        write_video(tmp / "rollout.mp4", rollout.rgb, FPS)
    verdict = "[green]success[/]" if rollout.success else "[red]failure[/]"
    console.print(f"{verdict} after {len(values)} actions: {document['instruction']}")
    emit(result)
