from __future__ import annotations

import importlib
import os

import typer

from vid2act.cli.common import LazyProgress, console, emit, handle_errors, options_from
from vid2act.configs import BCTrainConfig, IDMTrainConfig, VideoTrainConfig

app = typer.Typer(help="Train the models of the pipeline.", no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]})


RESUME_HELP = "Continue the run in --out from its last checkpoint."


def _run_with_progress(label: str, steps: int, run):
    """Runs `run(on_step, on_message)` under a progress bar (loss, samples/s, ETA) that appears with the first
    step, so a run refused while checking its inputs prints its one error line alone. Under `accelerate
    launch` every process runs the command; only the first one reports. When stderr is a log file rather
    than a terminal, the bar cannot redraw, so a plain line is written once a minute instead."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
               TextColumn("{task.fields[rate]} samples/s"), TextColumn("ETA"), TimeRemainingColumn())
    main_process = int(os.environ.get("RANK", "0")) == 0
    with LazyProgress(*columns, total=steps, loss="-", rate="-") as progress:
        last_line = [time.monotonic()]

        def on_step(step: int, loss: float, rate: float) -> None:
            if not main_process:
                return
            progress.update(completed=step, loss=f"{loss:.4f}", rate=f"{rate:.1f}")
            if not console.is_terminal and time.monotonic() - last_line[0] >= 60:
                last_line[0] = time.monotonic()
                remaining = progress.remaining
                eta = f"{remaining / 60:.0f} min" if remaining is not None else "-"
                console.print(f"{label}: step {step}/{steps}, loss {loss:.4f}, {rate:.1f} samples/s, ETA {eta}",
                              highlight=False)

        return run(on_step, console.print if main_process else (lambda text: None))


def _command(config_class, label: str, trainer: str, summary, doc: str):
    """`vid2act train LABEL`: the options of `config_class`, then --resume and --force; runs the training
    function `trainer` ("module:function", imported only when the command runs: torch and diffusers load
    slowly) under a progress bar, prints `summary(metrics)` and the run folder."""

    @handle_errors
    @options_from(config_class)
    def command(config, resume: bool = typer.Option(False, "--resume", help=RESUME_HELP),
                force: bool = typer.Option(False, "--force", "-f", help="Delete --out and start over.")) -> None:
        module, function = trainer.split(":")
        train = getattr(importlib.import_module(module), function)
        metrics = _run_with_progress(f"train {label}", config.steps, lambda on_step, on_message: train(
            config, resume=resume, force=force, on_step=on_step, on_message=on_message))
        if metrics:  # the main process
            console.print(summary(metrics))
            emit(config.out)

    command.__doc__ = doc
    app.command(label)(command)


def _action_errors(metrics: dict) -> str:
    return (f"gripper accuracy {metrics['gripper_accuracy']:.3f}, normalized MSE "
            f"{ {k: round(v, 4) for k, v in metrics['normalized_mse'].items()} }")


_command(IDMTrainConfig, "idm", "vid2act.idm.train:train", _action_errors,
         "Train the inverse-dynamics model. Prints the run folder, which then works as --idm.")
_command(VideoTrainConfig, "video", "vid2act.video.train:train", lambda metrics: f"validation PSNR {metrics['psnr']:.2f} dB",
         "Train the video planner: the grounding net, the sketch, then the chunk UNet. Prints the run folder "
         "(--planner).")
_command(BCTrainConfig, "bc", "vid2act.bc:train_bc", _action_errors,
         "Train the behavior-cloning baseline (frame + instruction -> action). Prints the run folder (--bc).")
