"""forum: the reference community platform pgferry is built and measured on."""

from pgferry import __version__

__all__ = ["__version__"]
