"""How a config field is offered on the command line: its help, short flag and panel ride in the field's
metadata, so the dataclass is the one source of every option's name, type, default and help, and the CLI
builds its options from it (`vid2act.cli.common.options_from`)."""
from __future__ import annotations

from dataclasses import MISSING, field


def option(default=MISSING, help: str = "", *, short: str = "", advanced: bool = False, every: tuple = (),
           reads: str = ""):
    """A dataclass field that is also a command-line option `--name-with-dashes`.
    `short`: a one-letter flag too. `advanced`: listed apart, under "Advanced", in --help.
    `every`: for a tuple field, what the word `all` stands for on the command line.
    `reads`: the field names an input the command reads: "path", or the kind of model a name resolves to
    ("idm", "planner", "bc"); the command's outputs must stay apart from it (`inputs_of`)."""
    return field(default=default, metadata={"help": help, "short": short, "advanced": advanced, "every": every,
                                            "reads": reads})

