from __future__ import annotations

import os
from pathlib import Path

import typer

from vid2act.cli.common import LazyProgress, console, emit, handle_errors

app = typer.Typer(help="Train the models of the pipeline.", no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]})


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
    report_to: str = typer.Option("none", "--report-to", help="none, or tensorboard: the curves also as event files "
                                  "in RUN/logs/ (curves.png is written either way)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or mps."),
    seed: int = typer.Option(0, "--seed", help="Seeds initialisation and batch sampling."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    force: bool = typer.Option(False, "--force", "-f", help="Delete --out and start over."),
) -> None:
    """Train the inverse-dynamics model. Prints the run folder, which then works as --idm."""
    from vid2act.idm.train import IDMTrainConfig, train

    config = IDMTrainConfig(str(data), str(out), head, modalities, context, width, steps, batch_size, lr,
                            eval_every=eval_every, checkpoint_every=checkpoint_every, seed=seed, device=device,
                            report_to=report_to)
    metrics = _run_with_progress("train idm", steps, lambda on_step, on_message: train(
        config, resume=resume, force=force, on_step=on_step, on_message=on_message))
    if metrics:  # the main process
        console.print(f"gripper accuracy {metrics['gripper_accuracy']:.3f}, normalized MSE "
                      f"{ {k: round(v, 4) for k, v in metrics['normalized_mse'].items()} }")
        emit(str(out))


@app.command("video")
@handle_errors
def video(
    data: Path = typer.Option(..., "--data", "-d", help="Dataset folder (from `vid2act collect`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: grounding, sketch, checkpoints, samples, snapshots, the planner."),
    modalities: str = typer.Option("rgbd", "--modalities", help="rgb or rgbd (plans with metric depth)."),
    stride: int = typer.Option(4, "--stride", help="Dataset frames between keyframes."),
    frames: int = typer.Option(4, "--frames", help="Keyframes per chunk, after the current frame."),
    horizon: int = typer.Option(0, "--horizon", help="Keyframes of an open-loop plan; 0 covers the longest episode."),
    widths: str = typer.Option("32,64,128", "--widths", help="UNet channels per level, comma-separated."),
    attention_levels: int = typer.Option(2, "--attention-levels", help="How many of the coarsest levels "
                                         "cross-attend to the instruction's tokens."),
    scale: int = typer.Option(2, "--scale", help="Draw chunks at 1/scale of the dataset's resolution; their change "
                              "from the current frame is upsampled (1: full resolution)."),
    steps: int = typer.Option(2500, "--steps", help="Optimizer steps of the chunk UNet."),
    batch_size: int = typer.Option(32, "--batch-size", help="Clips per step and process."),
    lr: float = typer.Option(3e-4, "--lr", help="Peak learning rate (warm-up, then cosine decay)."),
    grounding_steps: int = typer.Option(600, "--grounding-steps", help="Optimizer steps of the grounding net "
                                        "(trained first)."),
    sketch_steps: int = typer.Option(1500, "--sketch-steps", help="Optimizer steps of the sketch net (trained "
                                     "second: where the arm goes at each keyframe)."),
    eval_every: int = typer.Option(500, "--eval-every", help="Sample chunks, score them and snapshot every N steps."),
    checkpoint_every: int = typer.Option(250, "--checkpoint-every", help="Checkpoint every N steps."),
    report_to: str = typer.Option("none", "--report-to", help="none, or tensorboard: the curves also as event files "
                                  "in RUN/logs/ (curves.png is written either way)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or mps."),
    mixed_precision: str = typer.Option("no", "--mixed-precision", help="no, bf16 (CPUs with AMX or "
                                        "AVX512-BF16, GPUs) or fp16 (GPUs); weights stay fp32."),
    init_from: str = typer.Option("", "--init-from", help="Start the UNet from this planner's weights (folder or "
                                  "shipped name, e.g. default) instead of random ones."),
    seed: int = typer.Option(0, "--seed", help="Seeds initialisation, clips, noise and text dropout."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    force: bool = typer.Option(False, "--force", "-f", help="Delete --out and start over."),
) -> None:
    """Train the video planner: the grounding net, the sketch, then the chunk UNet. Prints the run folder (--model)."""
    from vid2act.video.train import VideoTrainConfig, train

    try:
        levels = tuple(int(w) for w in widths.split(","))
    except ValueError:
        raise typer.BadParameter(f"{widths!r} is not a comma-separated list of integers", param_hint="--widths")
    config = VideoTrainConfig(data=str(data), out=str(out), modalities=modalities, stride=stride, frames=frames,
                              horizon=horizon, widths=levels, attention_levels=attention_levels, scale=scale,
                              steps=steps, batch_size=batch_size, lr=lr, grounding_steps=grounding_steps,
                              sketch_steps=sketch_steps,
                              eval_every=eval_every, checkpoint_every=checkpoint_every, seed=seed, device=device,
                              mixed_precision=mixed_precision, init_from=init_from, report_to=report_to)
    metrics = _run_with_progress("train video", steps, lambda on_step, on_message: train(
        config, resume=resume, force=force, on_step=on_step, on_message=on_message))
    if metrics:
        console.print(f"validation PSNR {metrics['psnr']:.2f} dB")
        emit(str(out))


@app.command("bc")
@handle_errors
def bc(
    data: Path = typer.Option(..., "--data", "-d", help="Dataset folder (from `vid2act collect`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: checkpoints, metrics.json, the policy."),
    modalities: str = typer.Option("rgbd", "--modalities", help="rgb or rgbd."),
    width: int = typer.Option(16, "--width", help="Channels of the first conv layer (as the IDM's)."),
    steps: int = typer.Option(6000, "--steps", help="Optimizer steps."),
    batch_size: int = typer.Option(128, "--batch-size", help="Samples per step and process."),
    lr: float = typer.Option(2e-3, "--lr", help="Peak learning rate (warm-up, then cosine decay)."),
    checkpoint_every: int = typer.Option(250, "--checkpoint-every", help="Checkpoint every N steps."),
    grounding: str = typer.Option("", "--grounding", help="A planner (folder or shipped name, e.g. default) whose "
                                  "grounding heatmaps BC reads beside the frame, as the planner does."),
    report_to: str = typer.Option("none", "--report-to", help="none, or tensorboard: the curves also as event files "
                                  "in RUN/logs/ (curves.png is written either way)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or mps."),
    seed: int = typer.Option(0, "--seed", help="Seeds initialisation and batch sampling."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    force: bool = typer.Option(False, "--force", "-f", help="Delete --out and start over."),
) -> None:
    """Train the behavior-cloning baseline (frame + instruction -> action). Prints the run folder (--bc)."""
    from vid2act.bc import BCTrainConfig, train_bc

    config = BCTrainConfig(data=str(data), out=str(out), modalities=modalities, width=width, steps=steps,
                           batch_size=batch_size, lr=lr, checkpoint_every=checkpoint_every, seed=seed, device=device,
                           grounding=grounding, report_to=report_to)
    metrics = _run_with_progress("train bc", steps, lambda on_step, on_message: train_bc(
        config, resume=resume, force=force, on_step=on_step, on_message=on_message))
    if metrics:
        console.print(f"gripper accuracy {metrics['gripper_accuracy']:.3f}, normalized MSE "
                      f"{ {k: round(v, 4) for k, v in metrics['normalized_mse'].items()} }")
        emit(str(out))
