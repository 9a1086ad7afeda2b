"""vid2act: robot control as video generation (plan a video, read actions off it, execute them)."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vid2act")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"


def _register_environments() -> None:
    """The Gymnasium environments (`vid2act/Push-v0`, ...), registered on import as Gymnasium expects."""
    try:
        import gymnasium  # noqa: F401
    except ImportError:  # Gymnasium is a dependency; a source tree without it still works without the envs
        return
    from vid2act.gym import register
    register()


_register_environments()
