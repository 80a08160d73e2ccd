"""Progress reporting without tying the library to a terminal: the CLI passes a rich-backed one."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Told when a phase starts (with its number of steps, if known) and as steps finish."""

    def phase(self, label: str, total: int | None = None) -> None: ...

    def advance(self, steps: int = 1) -> None: ...


class NullProgress:
    """Progress that goes nowhere (library calls, tests)."""

    def phase(self, label: str, total: int | None = None) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass
