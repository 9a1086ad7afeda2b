"""`vid2act export lerobot` and `vid2act import lerobot`: datasets to and from LeRobot's format (v3.0)."""
from __future__ import annotations

from pathlib import Path

import typer

from vid2act.cli.common import FORCE_HELP, IMAGE_SIZE_HELP, console, emit, handle_errors, parse_image_size

export_app = typer.Typer(help="Write vid2act data in another tool's format.", no_args_is_help=True)
import_app = typer.Typer(help="Read another tool's data into vid2act's format.", no_args_is_help=True)


@export_app.command("lerobot")
@handle_errors
def export_lerobot(
    data: Path = typer.Argument(..., help="vid2act dataset folder (from `vid2act collect`)."),
    out: Path = typer.Argument(..., help="LeRobot dataset folder to write (LeRobotDataset v3.0)."),
    video_codec: str = typer.Option("h264", "--video-codec", help="h264 (full colour resolution, the default) "
                                    "or av1 (LeRobot's own default; 4:2:0 colour)."),
    force: bool = typer.Option(False, "--force", "-f", help=FORCE_HELP),
) -> None:
    """Export a dataset as a LeRobot v3.0 dataset (meta/, data/, videos/). Prints the folder."""
    from vid2act.interop.lerobot import export_lerobot as run
    info = run(data, out, video_codec, force)
    console.print(f"{info['total_episodes']} episodes, {info['total_frames']} frames, {info['total_tasks']} "
                  f"instructions in {out} (LeRobot {info['codebase_version']}, {video_codec})")
    emit(str(out))


@import_app.command("lerobot")
@handle_errors
def import_lerobot(
    source: Path = typer.Argument(..., help="LeRobot dataset folder (LeRobotDataset v3.0)."),
    data: Path = typer.Argument(..., help="vid2act dataset folder to write."),
    image_size: str = typer.Option("48x64", "--image-size", help=IMAGE_SIZE_HELP + " Frames are resampled to it."),
    force: bool = typer.Option(False, "--force", "-f", help=FORCE_HELP),
) -> None:
    """Import a LeRobot v3.0 dataset whose action is (dx, dy, dz, gripper) as a vid2act dataset that `train`
    reads. Prints the folder."""
    from vid2act.interop.lerobot import import_lerobot as run
    info = run(source, data, parse_image_size(image_size), force)
    console.print(f"{info['counts']['episodes']} episodes, {info['counts']['frames']} frames in {data}")
    emit(str(data))
