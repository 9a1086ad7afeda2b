from __future__ import annotations

from pathlib import Path

import typer

from vid2act.cli.common import FORCE_HELP, LazyProgress, console, emit, handle_errors


@handle_errors
def eval_command(
    policy: str = typer.Option("plan", "--policy", help="plan (planner + IDM), sketch (the planner's sketch "
                               "executed without drawing: the planner's ceiling), gt-video (the oracle's video + "
                               "IDM: the IDM's ceiling), oracle, bc or random."),
    video: str = typer.Option("default", "--video", help="Planner run folder or shipped name (policies plan, sketch)."),
    idm: str = typer.Option("default", "--idm", help="IDM run folder or shipped name (policies plan, sketch, gt-video)."),
    bc: str = typer.Option("default", "--bc", help="Behavior-cloning run folder or shipped name (policy bc)."),
    tasks: str = typer.Option("all", "--tasks", help="Comma-separated task families, or all."),
    split: str = typer.Option("test", "--split", help="test (seen combinations, unseen seeds) or heldout "
                                                     "(combinations no training data contains)."),
    episodes: int = typer.Option(10, "--episodes", "-n", help="Episodes per family."),
    first_seed: int = typer.Option(0, "--first-seed", help="Offset into the split's seed range."),
    replan_every: int = typer.Option(8, "--replan-every", "-k", help="policy plan: draw a new chunk from the "
                                     "real frame after K actions (closed loop); 0: one whole-task plan (open loop)."),
    steps: int = typer.Option(4, "--steps", help="Denoising steps per chunk."),
    guidance: float = typer.Option(1.0, "--guidance", help="Classifier-free guidance scale (1: none)."),
    workers: int = typer.Option(1, "--workers", "-w", help="Episodes in parallel processes."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or mps."),
    precision: str = typer.Option("fp32", "--precision", help="The planner's UNet in fp32, or bf16 (for GPUs "
                                  "and CPUs with AMX or AVX512-BF16; on 2 CPU cores it gained little: docs/results.md)."),
    out: Path = typer.Option(..., "--out", "-o", help="Eval folder: eval_info.json, report.md, episodes/."),
    force: bool = typer.Option(False, "--force", "-f", help=FORCE_HELP),
) -> None:
    """Success rates over many seeds, with 95 % intervals. Prints the aggregates as JSON."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from vid2act.eval import EvalConfig, evaluate
    from vid2act.sim.tasks import TASKS

    families = tuple(TASKS) if tasks == "all" else tuple(t.strip() for t in tasks.split(",") if t.strip())
    config = EvalConfig(out=str(out), policy=policy, video=video, idm=idm, bc=bc, tasks=families, split=split,
                        episodes=episodes, first_seed=first_seed, replan_every=replan_every, steps=steps,
                        guidance=guidance, workers=workers, device=device, precision=precision)
    config.check()
    if policy in ("plan", "sketch", "gt-video"):  # a missing model is a clear error now, not in every worker later
        from vid2act.idm.model import load_idm
        load_idm(idm)
    if policy in ("plan", "sketch"):
        from vid2act.video.pipeline import load_planner
        load_planner(video, precision=precision)
    if policy == "bc":
        from vid2act.bc import load_bc
        load_bc(bc)
    columns = (TextColumn(f"eval {policy}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("success {task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn())
    wins = 0
    with LazyProgress(*columns, total=len(families) * episodes, rate="-") as progress:

        def on_episode(record: dict, done: int, total: int) -> None:
            nonlocal wins
            wins += record["success"]
            progress.update(completed=done, rate=f"{wins}/{done} ({wins / done:.0%})")

        info = evaluate(config, force=force, on_episode=on_episode)
    for name, a in info["aggregates"].items():
        console.print(f"{name:<18} {a['successes']:>3}/{a['episodes']:<3} {a['success_rate']:>5.0%}  "
                      f"95% [{a['wilson95'][0]:.0%}, {a['wilson95'][1]:.0%}]", highlight=False)
    console.print(f"report: {out / 'report.md'}")
    emit({"out": str(out), "aggregates": info["aggregates"]})
