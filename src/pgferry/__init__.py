"""pgferry: diagnose, fix and move a struggling SQLite database to PostgreSQL without stopping it."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """`pgferry.__version__`, read from the installed metadata only when asked (importlib.metadata
    costs about 50 ms, paid by every command otherwise)."""
    if name != "__version__":
        raise AttributeError(name)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pgferry")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0.0.0+local"


__all__ = ["__version__"]
