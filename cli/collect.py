from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from vid2act.cli.common import IMAGE_SIZE_HELP, LazyProgress, console, emit, handle_errors, parse_image_size


@handle_errors
def collect(
    tasks: List[str] = typer.Option(..., "--tasks", "-t", help="Task families; repeat the option or give a "
                                                             "comma-separated list; 'all' for every family."),
    episodes: int = typer.Option(..., "--episodes", "-n", help="Successful demonstrations to keep, in all."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder. An unfinished one with the same "
                                                      "settings is resumed."),
    split: str = typer.Option("train", "--split", help="train, test or heldout."),
    seed: int = typer.Option(0, "--seed", "-s", help="Offset into the split's seed range."),
    workers: int = typer.Option(1, "--workers", "-w", help="Simulation processes."),
    image_size: str = typer.Option("48x64", "--image-size", help=IMAGE_SIZE_HELP),
    previews: bool = typer.Option(False, "--previews", help="Also write an mp4 per episode (for eyes)."),
    force: bool = typer.Option(False, "--force", "-f", help="Delete the folder and start over."),
    recover: str = typer.Option("", "--recover", help="Recovery episodes: this policy (sketch or random) acts "
                                                      "first, for a random number of actions, then the expert "
                                                      "finishes from where it left the scene."),
    planner: str = typer.Option("default", "--planner", help="With --recover sketch: planner folder or shipped name."),
    idm: str = typer.Option("default", "--idm", help="With --recover sketch: IDM folder or shipped name."),
) -> None:
    """Collect scripted expert demonstrations into a dataset folder. Prints the folder.

    Only successful episodes are kept. Rerunning an interrupted command resumes it."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from vid2act.data.collect import CollectConfig
    from vid2act.data.collect import collect as run
    from vid2act.sim.tasks import TASKS

    names = [name.strip() for item in tasks for name in item.split(",") if name.strip()]
    if names == ["all"]:
        names = list(TASKS)
    config = CollectConfig(tasks=tuple(names), episodes=episodes, split=split, seed=seed,
                           image_size=parse_image_size(image_size), previews=previews, recover=recover,
                           planner=planner, idm=idm)
    make_recovery_policy = None
    if recover:
        import functools

        from vid2act.policies import load_policy
        make_recovery_policy = functools.partial(load_policy, recover, planner, idm)
    columns = (TextColumn("collect"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with LazyProgress(*columns, total=episodes, rate="") as progress:
        frames = 0

        def on_start(todo: int, total: int) -> None:
            progress.update(completed=total - todo)
            if todo < total:
                console.print(f"resuming {out}: {total - todo} of {total} episodes already there")

        def on_episode(record: dict) -> None:
            nonlocal frames
            frames += record["frames"]
            progress.update(advance=1, rate=f"{frames / progress.elapsed:.0f} frames/s")

        info = run(config, out, workers=workers, force=force, on_episode=on_episode, on_start=on_start,
                   make_recovery_policy=make_recovery_policy)
    counts = info["counts"]
    skipped = (f"{counts['seeds_passed_over']} seeds passed over: solved before the hand-over, or the expert failed"
               if recover else f"{counts['oracle_failures_skipped']} failed oracle seeds skipped")
    console.print(f"{counts['episodes']} episodes, {counts['frames']} frames in {out} ({skipped})")
    emit(str(out))
