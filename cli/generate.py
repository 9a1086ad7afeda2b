from __future__ import annotations

from pathlib import Path

import typer

from vid2act.cli.common import FORCE_HELP, console, emit, handle_errors


@handle_errors
def generate(
    planner: str = typer.Option("default", "--planner", help="Planner run folder, or the name of a shipped planner."),
    scene: Path = typer.Option(None, "--scene", help="Scene folder (start.png, start_depth.npy, its instruction)."),
    image: Path = typer.Option(None, "--image", help="Start image (PNG), instead of --scene."),
    depth: Path = typer.Option(None, "--depth", help="Start depth (.npy, metres) for an RGB-D planner, with --image."),
    prompt: str = typer.Option(None, "--prompt", "-p", help="The instruction (default with --scene: the scene's)."),
    out: Path = typer.Option(..., "--out", "-o", help="Plan folder to write."),
    steps: int = typer.Option(4, "--steps", help="Denoising steps per chunk."),
    guidance: float = typer.Option(1.0, "--guidance", help="Classifier-free guidance scale (1: none)."),
    sampler: str = typer.Option(None, "--sampler", help="ddim or dpm++ (default: the planner's).", show_default=False),
    seed: int = typer.Option(0, "--seed", help="Seeds the noise: same seed, same plan."),
    num_samples: int = typer.Option(1, "--num-samples", "-k", help="Plans to draw; all are written, the first is the plan."),
    resize: bool = typer.Option(False, "--resize", help="Resize a start image of another size to the planner's."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or mps."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, or bf16 (for GPUs and CPUs with AMX or "
                                  "AVX512-BF16; on 2 CPU cores it gained little: docs/results.md)."),
    force: bool = typer.Option(False, "--force", "-f", help=FORCE_HELP),
) -> None:
    """Draw a whole-task plan (a video of the task being done) from a start image and an instruction: the
    instruction grounded once, then chunks rolled forward on their own keyframes. Prints the plan folder."""
    from vid2act.outputs import check_apart, check_can_write
    from vid2act.configs import check_sampling
    from vid2act.devices import check_device
    from vid2act.video.generate import generate_plan, plan_document, read_start, write_plan_folder
    from vid2act.shipped import path_of, resolve
    from vid2act.video.pipeline import load_planner
    from vid2act.video.text import check_prompt

    check_sampling(steps, guidance, num_samples)
    check_device(device)
    check_apart({"--out": out}, {"--scene": scene, "--image": image, "--depth": depth,
                                 "--planner": path_of(planner, "planner")})
    check_can_write(out, force)
    rgb, start_depth, text, scene_document = read_start(scene, image, depth, prompt)
    text = check_prompt(text)
    pipe = load_planner(planner, device, sampler, precision)
    samples, seconds = generate_plan(pipe, rgb, start_depth, text, steps, guidance, seed, num_samples, resize)
    document = plan_document(pipe, str(resolve(planner, "planner")), text, steps, guidance, seed, num_samples, seconds,
                             scene_document, scene, len(samples[0][0]) - 1)
    write_plan_folder(out, force, document, samples)
    console.print(f"plan of {document['keyframes']} keyframes ({num_samples} sample{'s' * (num_samples > 1)}) in "
                  f"{seconds:.2f} s: {text!r}")
    emit(str(out))
