"""Errors a user can cause and fix. The CLI prints the message as one line and exits with `exit_code`."""


class Vid2ActError(Exception):
    """Something in the inputs (files, models, data) is wrong: exit code 1."""
    exit_code = 1


class UsageError(Vid2ActError):
    """The command line asks for something impossible (unknown task, seed out of range...): exit code 2."""
    exit_code = 2


MAX_WORKERS = 256  # processes a command may start


def check_range(option: str, value, low, high) -> None:
    """A count-, size- or scale-like option must be a finite number in [low, high], checked before any work."""
    import math
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{option} must be a finite number (got {value})")
    if not low <= value <= high:
        raise UsageError(f"{option} must lie between {low} and {high} (got {value})")


def check_positive(config, names) -> None:
    """Each named field of `config` must be a finite number above 0 (NaN and infinity are refused too)."""
    for name in names:
        value = getattr(config, name)
        import math
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{name.replace('_', '-')} must be a positive number (got {value})")
