from __future__ import annotations

import os
from pathlib import Path

import typer

from vid2act.cli.common import console, emit, handle_errors

app = typer.Typer(help="Train the models of the pipeline.", no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]})


@app.command("idm")
@handle_errors
def idm(
    data: Path = typer.Option(..., "--data", "-d", help="Dataset folder (from `vid2act collect`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: checkpoints, metrics.json, the model."),
    modalities: str = typer.Option("rgbd", "--modalities", help="rgb or rgbd (RGB plus metric depth)."),
    head: str = typer.Option("pose", "--head", help="pose (per-frame grasp point, differenced), delta (UniPi: "
                                                   "a frame pair to its action) or fused (both, filtered)."),
    context: int = typer.Option(1, "--context", help="pose head: frames on each side of the centre frame."),
    width: int = typer.Option(16, "--width", help="Channels of the first conv layer."),
    steps: int = typer.Option(6000, "--steps", help="Optimizer steps."),
    batch_size: int = typer.Option(128, "--batch-size", help="Samples per step and process."),
    lr: float = typer.Option(2e-3, "--lr", help="Peak learning rate (warm-up, then cosine decay)."),
    eval_every: int = typer.Option(1000, "--eval-every", help="Validate every N steps."),
    checkpoint_every: int = typer.Option(250, "--checkpoint-every", help="Checkpoint every N steps."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or mps."),
    seed: int = typer.Option(0, "--seed", help="Seeds initialisation and batch sampling."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    force: bool = typer.Option(False, "--force", "-f", help="Delete --out and start over."),
) -> None:
    """Train the inverse-dynamics model. Prints the run folder, which then works as --idm."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from vid2act.idm.train import IDMTrainConfig, train

    config = IDMTrainConfig(str(data), str(out), head, modalities, context, width, steps, batch_size, lr,
                            eval_every=eval_every, checkpoint_every=checkpoint_every, seed=seed, device=device)
    columns = (TextColumn("train idm"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
               TextColumn("{task.fields[rate]} samples/s"), TextColumn("ETA"), TimeRemainingColumn())
    # Under `accelerate launch` every process runs this command; only the first one reports.
    main_process = int(os.environ.get("RANK", "0")) == 0
    with Progress(*columns, console=console, disable=not main_process) as progress:
        bar = progress.add_task("train", total=steps, loss="-", rate="-")

        def on_step(step: int, loss: float, rate: float) -> None:
            progress.update(bar, completed=step, loss=f"{loss:.4f}", rate=f"{rate:.0f}")

        on_message = progress.console.print if main_process else (lambda text: None)
        metrics = train(config, resume=resume, force=force, on_step=on_step, on_message=on_message)
    if metrics:  # the main process
        console.print(f"gripper accuracy {metrics['gripper_accuracy']:.3f}, normalized MSE "
                      f"{ {k: round(v, 4) for k, v in metrics['normalized_mse'].items()} }")
        emit(str(out))
