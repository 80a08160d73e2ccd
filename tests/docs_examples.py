"""The Python examples of docs/*.md run as written, so a documented example cannot drift from the code.

A test names the section (the first ```python block after its heading) and what stands in for the
example's placeholders, such as its DSN; a placeholder the example no longer has fails the test.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def example(doc: str, heading: str) -> str:
    """The first Python block after `heading` in docs/`doc`."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    found = re.search(r"```python\n(.*?)```", text[text.index(heading) :], re.S)
    assert found, f"no Python example under {heading!r} in docs/{doc}"
    return found.group(1)


def run_example(doc: str, heading: str, replace: dict[str, str] | None = None) -> None:
    """Run that example, with each key of `replace` (which must be in it) replaced by its value."""
    code = example(doc, heading)
    for old, new in (replace or {}).items():
        assert old in code, f"{old!r} is not in the example under {heading!r} in docs/{doc}"
        code = code.replace(old, new)
    module = types.ModuleType("docs_example")  # a module of its own: dataclasses look their module up
    sys.modules[module.__name__] = module
    try:
        exec(compile(code, f"docs/{doc}", "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
