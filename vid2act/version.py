"""The installed vid2act's version (what every output records)."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vid2act")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
