"""What every command shares: the stderr console, error reporting, and option parsing."""
from __future__ import annotations

import functools
import json
import os
import sys

import typer
from typer.exceptions import TyperException
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1):
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(command):
    """Turn the errors a user can cause into one line and an exit code; tracebacks only with VID2ACT_DEBUG=1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from vid2act.errors import Vid2ActError
        try:
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
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except Exception as e:  # a bug, not a user error: say so, keep it short
            if os.environ.get("VID2ACT_DEBUG") == "1":
                raise
            fail(f"unexpected {e.__class__.__name__}: {e} (rerun with VID2ACT_DEBUG=1 for the traceback, and "
                 "please report it)", 1)

    return wrapper


def emit(value) -> None:
    """Machine output on stdout: a path or a JSON document."""
    text = value if isinstance(value, str) else json.dumps(value, indent=2)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def parse_image_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not HxW, for example 48x64") from None
    if height <= 0 or width <= 0 or height % 16 or width % 16:
        raise typer.BadParameter(f"{text}: height and width must be positive multiples of 16")
    return height, width


IMAGE_SIZE_HELP = "Image size as HxW (multiples of 16)."
FORCE_HELP = "Replace the output if it exists."
