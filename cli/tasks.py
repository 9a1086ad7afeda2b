from __future__ import annotations

import typer

from vid2act.cli.common import emit, handle_errors


@handle_errors
def tasks(as_json: bool = typer.Option(False, "--json", help="Print the suite as a JSON list.")) -> None:
    """List the task families, their instruction templates, held-out combinations and seed ranges."""
    from rich.console import Console
    from rich.table import Table

    from vid2act.sim.tasks import combination_name, suite_json

    suite = suite_json()
    if as_json:
        emit(suite)
        return
    table = Table(title="vid2act task families", show_lines=True)
    for column in ("family", "instructions", "success when", "held-out combinations"):
        table.add_column(column)
    for family in suite:
        table.add_row(f"[bold]{family['name']}[/]\n{family['description']}\n{family['combinations']} combinations, "
                      f"≤ {family['max_steps']} steps", "\n".join(family["templates"]), family["success"],
                      "\n".join(combination_name(c) for c in family["heldout"]))
    console = Console()
    console.print(table)
    seeds = suite[0]["seeds"]
    console.print(f"colors: {', '.join(suite[0]['colors'])}; objects: {', '.join(suite[0]['objects'])}\n"
                  f"splits: train seeds {seeds['train'][0]}..{seeds['train'][1]}, test seeds "
                  f"{seeds['test'][0]}..{seeds['test'][1]}; heldout = test seeds with only the held-out "
                  "combinations, which train and test never contain")
