"""Errors a user can cause and fix. The CLI prints the message as one line and exits with `exit_code`."""


class Vid2ActError(Exception):
    """Something in the inputs (files, models, data) is wrong: exit code 1."""
    exit_code = 1


class UsageError(Vid2ActError):
    """The command line asks for something impossible (unknown task, seed out of range...): exit code 2."""
    exit_code = 2
