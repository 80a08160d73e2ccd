"""pgferry: diagnose, fix and move a struggling SQLite database to PostgreSQL without stopping it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pgferry")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
