from __future__ import annotations

from pathlib import Path

import typer

from vid2act.cli.common import FORCE_HELP, console, emit, handle_errors


@handle_errors
def execute(
    actions: str = typer.Argument(..., help="Actions file (from `vid2act oracle` or `translate`); - for stdin."),
    scene_dir: Path = typer.Option(..., "--scene", help="Scene folder the actions start from."),
    out: Path = typer.Option(..., "--out", "-o", help="Rollout folder to write."),
    max_steps: int = typer.Option(None, "--max-steps", "-k", help="Stop after this many actions (closed-loop "
                                  "replanning: execute K, replan from what the robot sees).", show_default=False),
    next_scene: Path = typer.Option(None, "--next-scene", help="Also write the state reached as a scene folder "
                                    "(start.png and start_depth.npy are the real last frame): the next plan's start."),
    force: bool = typer.Option(False, "--force", "-f", help=FORCE_HELP),
) -> None:
    """Run actions from a scene: result.json, frames.npz and rollout.mp4. Prints the result JSON."""
    from vid2act.errors import UsageError
    from contextlib import ExitStack

    from vid2act.formats import read_actions, read_scene, result_document, write_scene
    from vid2act.media import write_rollout
    from vid2act.outputs import check_apart, check_can_write, output_dir
    from vid2act.sim.env import SceneWorld

    if max_steps is not None and max_steps < 0:
        raise UsageError(f"--max-steps must be 0 or more (got {max_steps})")
    check_apart({"--out": out, "--next-scene": next_scene}, {"ACTIONS": actions, "--scene": scene_dir})
    document = read_scene(scene_dir)
    values, actions_document = read_actions(actions)
    check_can_write(out, force)
    if next_scene is not None:
        check_can_write(next_scene, force)
    with SceneWorld(document) as env:
        rollout = env.run(values, max_steps=max_steps)
        reached = env.reached_scene(len(rollout.actions)) if next_scene is not None else None
    result = result_document(document, rollout, actions_source=actions_document.get("source"),
                             scene_dir=scene_dir)
    with ExitStack() as outputs:  # both written, then both renamed: a failure leaves neither
        tmp = outputs.enter_context(output_dir(out, force))
        if reached is not None:
            write_scene(outputs.enter_context(output_dir(next_scene, force)), reached, rollout.rgb[-1],
                        rollout.depth[-1])
        write_rollout(tmp, rollout.rgb, rollout.depth, result)
    verdict = "[green]success[/]" if rollout.success else "[red]failure[/]"
    console.print(f"{verdict} after {len(rollout.actions)} of {len(values)} actions: {document['instruction']}")
    emit(result)
