"""The PyBullet world, the Panda, the task families and the environment that joins them."""
import os
import sys
from contextlib import contextmanager


@contextmanager
def silenced(fd: int):
    """Send a file descriptor to /dev/null meanwhile: PyBullet's C code greets stdout and stderr. Kept with
    VID2ACT_DEBUG=1."""
    if os.environ.get("VID2ACT_DEBUG") == "1":
        yield
        return
    (sys.stdout if fd == 1 else sys.stderr).flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


with silenced(2):  # before any module of this package imports it
    import pybullet  # noqa: F401,E402
