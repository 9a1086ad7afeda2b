from __future__ import annotations

from pathlib import Path

import typer

from vid2act.cli.common import FORCE_HELP, console, emit, handle_errors


@handle_errors
def view(
    data: Path = typer.Argument(..., help="Dataset folder (from `vid2act collect` or `vid2act import lerobot`)."),
    episodes: str = typer.Option("", "--episodes", "-e", help="Episode numbers, comma-separated (default: the "
                                 "first four)."),
    out: Path = typer.Option(..., "--out", "-o", help="Video to write: FILE.gif or FILE.mp4."),
    scale: int = typer.Option(4, "--scale", help="Enlarge each frame this many times."),
    force: bool = typer.Option(False, "--force", "-f", help=FORCE_HELP),
) -> None:
    """Draw dataset episodes side by side under their instructions, as a GIF or an mp4. Prints the file."""
    from vid2act.data.dataset import Dataset
    from vid2act.data.view import grid, parse_episodes
    from vid2act.errors import UsageError, check_range
    from vid2act.media import write_gif, write_video
    from vid2act.outputs import check_apart, check_can_write

    if out.suffix.lower() not in (".gif", ".mp4"):
        raise UsageError(f"--out {out}: write a .gif or an .mp4")
    check_range("--scale", scale, 1, 16)
    check_apart({"--out": out}, {"DATA": data})
    check_can_write(out, force)
    dataset = Dataset(data)
    chosen = parse_episodes(episodes, len(dataset))
    frames = grid(dataset, chosen, scale)
    fps = float(dataset.info["fps"])
    if out.suffix.lower() == ".gif":
        write_gif(out, frames, fps)
    else:
        import numpy as np
        h, w = frames.shape[1:3]  # H.264 wants sides divisible by 16 here: pad with white
        frames = np.pad(frames, ((0, 0), (0, -h % 16), (0, -w % 16), (0, 0)), constant_values=255)
        write_video(out, frames, fps)
    console.print(f"{len(chosen)} episodes of {data}, {len(frames)} frames, {frames.shape[2]}x{frames.shape[1]}")
    emit(str(out))
