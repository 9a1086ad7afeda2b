from __future__ import annotations

from pathlib import Path

import typer

from vid2act.cli.common import FORCE_HELP, LazyProgress, console, emit, handle_errors, options_from
from vid2act.configs import EvalConfig


@handle_errors
@options_from(EvalConfig)
def eval_command(config: EvalConfig, force: bool = typer.Option(False, "--force", "-f", help=FORCE_HELP)) -> None:
    """Success rates over many seeds, with 95 % intervals. Prints the aggregates as JSON."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from vid2act.eval import check_output, evaluate

    config.check()
    check_output(config, force)
    policy, out, episodes = config.policy, Path(config.out), config.episodes
    from vid2act.policies import load_models
    load_models(policy, config.planner, config.idm, config.bc, precision=config.precision)  # a missing model is
    # a clear error now, not in every worker later
    columns = (TextColumn(f"eval {policy}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("success {task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn())
    wins = 0
    with LazyProgress(*columns, total=len(config.tasks) * episodes, rate="-") as progress:

        def on_episode(record: dict, done: int, total: int) -> None:
            nonlocal wins
            wins += record["success"]
            progress.update(completed=done, rate=f"{wins}/{done} ({wins / done:.0%})")

        info = evaluate(config, force=force, on_episode=on_episode)
    for name, a in info["aggregates"].items():
        console.print(f"{name:<18} {a['successes']:>3}/{a['episodes']:<3} {a['success_rate']:>5.0%}  "
                      f"95% [{a['wilson95'][0]:.0%}, {a['wilson95'][1]:.0%}]  "
                      f"solved at some step {a['solved_at_some_step']}/{a['episodes']}", highlight=False)
    console.print(f"report: {out / 'report.md'}")
    emit({"out": str(out), "aggregates": info["aggregates"]})
