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


def inputs_of(config) -> dict[str, str]:
    """The inputs a config names, as {--option: path}, model names resolved to their folders."""
    from dataclasses import fields

    from vid2act.shipped import path_of
    found = {}
    for f in fields(config):
        reads, value = f.metadata.get("reads"), getattr(config, f.name)
        if reads and value:
            found["--" + f.name.replace("_", "-")] = value if reads == "path" else str(path_of(value, reads))
    return found
