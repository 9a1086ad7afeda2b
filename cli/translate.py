from __future__ import annotations

from pathlib import Path

import typer

from vid2act.cli.common import FORCE_HELP, console, emit, handle_errors


@handle_errors
def translate(
    source: Path = typer.Argument(..., help="Frames: a plan or rollout folder, a frames/episode .npz, a video "
                                            "(mp4, gif...) or a folder of PNGs."),
    idm: str = typer.Option("default", "--idm", help="IDM run folder, or the name of a shipped model."),
    out: str = typer.Option(..., "--out", "-o", help="Actions file to write; - for stdout."),
    resize: bool = typer.Option(False, "--resize", help="Resize frames of another size to the model's."),
    stride: int = typer.Option(None, "--stride", help="Dataset frames between the source's frames (a plan "
                                                      "folder says; otherwise 1).", show_default=False),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or mps."),
    force: bool = typer.Option(False, "--force", "-f", help=FORCE_HELP),
) -> None:
    """Read robot actions off consecutive frames with an inverse-dynamics model. Prints the actions file."""
    from vid2act.formats import write_actions
    from vid2act.outputs import STDIO, check_apart, check_can_write
    from vid2act.idm.translate import translate_frames
    from vid2act.shipped import path_of
    check_apart({"--out": out}, {"SOURCE": source, "--idm": path_of(idm, "idm")})

    if out != STDIO:
        check_can_write(Path(out), force)
    actions, source_info = translate_frames(source, idm, resize=resize, device=device, stride=stride)
    if source_info["clipped"]:
        console.print(f"[yellow]warning:[/] {source_info['clipped']} predicted values lay outside the action "
                      "bounds and were clipped to them (counted in the file's source.clipped)")
    write_actions(out, actions, source_info, force)
    console.print(f"{len(actions)} actions from {source_info['frames']} frames of {source}")
    if out != STDIO:
        emit(out)
