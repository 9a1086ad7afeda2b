from __future__ import annotations

from pathlib import Path

import typer

from vid2act.cli.common import FORCE_HELP, console, emit, handle_errors


@handle_errors
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Folder for the report, plans and videos."),
    episodes: int = typer.Option(1, "--episodes", "-n", help="Scenes per task family."),
    replan_every: int = typer.Option(8, "--replan-every", "-k", help="Plan again from the real frame after K "
                                                                     "actions; 0 is open loop."),
    force: bool = typer.Option(False, "--force", "-f", help=FORCE_HELP),
) -> None:
    """The whole pipeline with the shipped models, offline: for one test scene per task family, draw a plan,
    read actions off it, execute them (replanning from the real frame), and report. Prints the report path."""
    from vid2act.configs import EvalConfig
    from vid2act.eval import evaluate

    config = EvalConfig(out=str(out), episodes=episodes, replan_every=replan_every)
    config.check()

    def on_episode(record: dict, done: int, total: int) -> None:
        verdict = "[green]success[/]" if record["success"] else "[red]failure[/]"
        console.print(f"[{done}/{total}] {record['task']:<10} {verdict}  {record['plans']} plans, "
                      f"{record['steps']} actions  \"{record['instruction']}\"")

    console.print("generate -> translate -> execute, shipped planner and IDM, CPU")
    info = evaluate(config, force=force, on_episode=on_episode)
    console.print(f"\n{'family':<12} success  ({info['wall_seconds']:.0f} s)")
    for name, a in info["aggregates"].items():
        console.print(f"{name.split('/')[0]:<12} {a['successes']}/{a['episodes']}", highlight=False)
    console.print(f"report and videos: {out / 'report.md'}")
    emit(str(out / "report.md"))
