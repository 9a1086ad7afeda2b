"""The PyBullet world, the Panda, the task families and the environment that joins them."""

import os
import sys


def import_pybullet_quietly() -> None:
    """Import PyBullet without its build-time greeting on stderr (kept with VID2ACT_DEBUG=1)."""
    if "pybullet" in sys.modules or os.environ.get("VID2ACT_DEBUG") == "1":
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import pybullet  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
