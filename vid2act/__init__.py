"""vid2act: robot control as video generation (plan a video, read actions off it, execute them)."""
import sys

from vid2act.version import __version__  # noqa: F401

if "gymnasium" in sys.modules:
    # `import gymnasium, vid2act` and `gymnasium.make("vid2act:vid2act/Push-v0")` register the environments
    # (`vid2act/Push-v0`, ...): Gymnasium 1.x has no plugin entry points, and importing it here would make every
    # `import vid2act` pay for it (`import vid2act.gym` registers them too)
    import vid2act.gym  # noqa: F401
