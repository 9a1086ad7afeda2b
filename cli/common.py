"""What every command shares: the stderr console, error reporting, and option parsing."""
from __future__ import annotations

import errno
import functools
import json
import os
import sys

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)
# typer vendors click in some versions: take its exception class from one typer exports
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
ENVIRONMENT_ERRORS = {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG,
                      errno.ENOTDIR, errno.EISDIR, errno.EMFILE, errno.ENFILE, errno.EIO, errno.ELOOP}


def fail(message: str, code: int = 1):
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(command):
    """Turn the errors a user can cause into one line and an exit code; tracebacks only with VID2ACT_DEBUG=1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        import warnings

        from vid2act.errors import Vid2ActError
        debug = os.environ.get("VID2ACT_DEBUG") == "1"
        try:
            with warnings.catch_warnings():
                if not debug:  # libraries' warnings (numpy's RuntimeWarning...) are for developers, not users
                    warnings.simplefilter("ignore")
                return command(*args, **kwargs)
        except Vid2ActError as e:
            if os.environ.get("VID2ACT_DEBUG") == "1":
                raise
            fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except BrokenPipeError:  # the reader of stdout went away (`| head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1)
        except (typer.Exit, typer.Abort, TyperException, ClickException):
            raise
        except OSError as e:  # the user's environment (read-only, full, too long a name), not a bug
            if os.environ.get("VID2ACT_DEBUG") == "1" or e.errno not in ENVIRONMENT_ERRORS:
                raise_bug(e)
            where = f" {e.filename}" if e.filename else ""
            fail(f"cannot write or read{where}: {e.strerror} (check the path, its permissions and the free space)", 1)
        except Exception as e:  # a bug, not a user error: say so, keep it short
            raise_bug(e)

    return wrapper


BUG_MARKER = "please report it"  # ends the one line of an internal error, and only of one


def raise_bug(e: Exception):
    if os.environ.get("VID2ACT_DEBUG") == "1":
        raise e
    fail(f"unexpected {e.__class__.__name__}: {e} (rerun with VID2ACT_DEBUG=1 for the traceback, and "
         f"{BUG_MARKER})", 1)


def emit(value) -> None:
    """Machine output on stdout: a path or a JSON document."""
    text = value if isinstance(value, str) else json.dumps(value, indent=2)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class OneLineErrors(TyperGroup):
    """The root command: a usage error the parser finds (an unknown option, a value that is not a number) is
    one line on stderr and exit 2, as vid2act's own errors are, instead of click's boxed form."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ClickException as e:
            where = f"{e.ctx.command_path}: " if getattr(e, "ctx", None) is not None else ""
            hint = f" (see `{e.ctx.command_path} --help`)" if getattr(e, "ctx", None) is not None else ""
            message = " ".join(e.format_message().split())
            console.print(f"[bold red]error:[/] {where}{message}{hint}", highlight=False, soft_wrap=True)
            code = e.exit_code
        except typer.Abort:
            console.print("[bold red]error:[/] aborted", highlight=False)
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


def parse_image_size(text: str) -> tuple[int, int]:
    from vid2act.spec import image_size_problem
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not HxW, for example 48x64", param_hint="--image-size") from None
    problem = image_size_problem(height, width)
    if problem:
        raise typer.BadParameter(f"{text}: {problem}", param_hint="--image-size")
    return height, width


class LazyProgress:
    """A rich progress bar that appears only when the work it follows reports its first step, so that an
    error found while checking the inputs is the only thing printed."""

    def __init__(self, *columns, **task):
        self.columns, self.task, self.progress, self.bar = columns, task, None, None

    def update(self, **fields) -> None:
        if self.progress is None:
            from rich.progress import Progress
            self.progress = Progress(*self.columns, console=console)
            self.progress.start()
            self.bar = self.progress.add_task("", **self.task)
        self.progress.update(self.bar, **fields)

    @property
    def elapsed(self) -> float:
        return (self.progress.tasks[0].elapsed or 1e-9) if self.progress is not None else 1e-9

    @property
    def remaining(self) -> float | None:
        return self.progress.tasks[0].time_remaining if self.progress is not None else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()


IMAGE_SIZE_HELP = "Image size as HxW (multiples of 16, at most 1024)."
FORCE_HELP = "Replace the output if it exists."


# --- options built from a config dataclass -----------------------------------------------------------------
ADVANCED = "Advanced"


def options_from(config_class):
    """Decorator: the command's options are `config_class`'s fields, each `--name-with-dashes` with the
    field's type, default and help (`vid2act.options.option`); the command receives `config`, built by
    keyword, and its own remaining parameters (--resume, --force) as they are. Tuple fields are given as
    comma-separated lists (and `all` where the field says what that is)."""
    import dataclasses
    import inspect
    import typing

    hints = typing.get_type_hints(config_class)
    fields = dataclasses.fields(config_class)
    items = {f.name: typing.get_args(hints[f.name])[0] for f in fields  # tuple fields: their items' type
             if typing.get_origin(hints[f.name]) is tuple}

    def decorate(command):
        own_hints = typing.get_type_hints(command)
        own = [p.replace(annotation=own_hints[p.name], kind=inspect.Parameter.KEYWORD_ONLY)
               for p in inspect.signature(command).parameters.values() if p.name != "config"]
        options = []
        for f in fields:
            flags = [flag_of(f)] + ([f.metadata["short"]] if f.metadata.get("short") else [])
            panel = ADVANCED if f.metadata.get("advanced") else None
            options.append(inspect.Parameter(
                f.name, inspect.Parameter.KEYWORD_ONLY, annotation=str if f.name in items else hints[f.name],
                default=typer.Option(cli_default(f), *flags, help=f.metadata.get("help") or None,
                                     rich_help_panel=panel)))

        @functools.wraps(command)
        def wrapper(**kwargs):
            values = {f.name: kwargs.pop(f.name) for f in fields}
            for f in fields:
                if f.name in items:
                    values[f.name] = parse_list(values[f.name], f, items[f.name])
            return command(config_class(**values), **kwargs)

        del wrapper.__wrapped__
        wrapper.__signature__ = inspect.Signature(options + own)
        wrapper.__annotations__ = {p.name: p.annotation for p in options + own}
        wrapper.config_class = config_class
        return wrapper

    return decorate


def flag_of(f) -> str:
    return "--" + f.name.replace("_", "-")


def cli_default(f):
    """The default a field's option shows and parses: `...` (required) where the field has none, a
    comma-separated list (or `all`) for a tuple."""
    import dataclasses
    if f.default is dataclasses.MISSING:
        return ...
    if isinstance(f.default, tuple):
        return "all" if f.metadata.get("every") and f.default == tuple(f.metadata["every"]) else \
            ",".join(map(str, f.default))
    return f.default


def parse_list(text: str, f, item_type) -> tuple:
    every = f.metadata.get("every")
    if every and text.strip() == "all":
        return tuple(every)
    try:
        return tuple(item_type(part.strip()) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of {item_type.__name__} values",
                                 param_hint=flag_of(f)) from None
