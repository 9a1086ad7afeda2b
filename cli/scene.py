from __future__ import annotations

from pathlib import Path

import typer

from vid2act.cli.common import FORCE_HELP, IMAGE_SIZE_HELP, console, emit, handle_errors, parse_image_size


@handle_errors
def scene(
    task: str = typer.Option(..., "--task", "-t", help="Task family (see `vid2act tasks`)."),
    seed: int = typer.Option(..., "--seed", "-s", help="Scene seed, inside the split's seed range."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write."),
    split: str = typer.Option("test", "--split", help="train, test or heldout."),
    image_size: str = typer.Option("48x64", "--image-size", help=IMAGE_SIZE_HELP),
    force: bool = typer.Option(False, "--force", "-f", help=FORCE_HELP),
) -> None:
    """Make a reproducible start state: scene.json, start.png and start_depth.npy. Prints the folder."""
    from vid2act.formats import write_scene
    from vid2act.outputs import check_can_write, output_dir
    from vid2act.sim.env import SceneWorld, make_scene

    size = parse_image_size(image_size)
    check_can_write(out, force)
    document = make_scene(task, seed, split, size)
    with SceneWorld(document) as env:
        rgb, depth = env.world.render()
    with output_dir(out, force) as tmp:
        write_scene(tmp, document, rgb, depth)
    console.print(f"{task} seed {seed} ({split}): [bold]{document['instruction']}[/]")
    emit(str(out))
