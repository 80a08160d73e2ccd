"""Plan files a person reads and edits: TOML (or JSON for a .json file), read with errors that name the
file, written by hand as TOML (the standard library reads TOML but does not write it).

Shared by `pgferry split --plan` (pgferry.split.plan) and `pgferry copy --native-plan`
(pgferry.migrate.native_plan): each checks its own fields on the data read here.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from pgferry.errors import UsageError


def read_plan_file(path: str | Path) -> tuple[Any, str]:
    """The data of a plan file and the name to use in messages; UsageError naming the file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"plan file not found: {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read plan file {file}: {exc}") from None
    return parse_plan_text(text, str(file), "json" if file.suffix.lower() == ".json" else "toml"), str(file)


def parse_plan_text(text: str, source: str = "plan", fmt: str = "toml") -> Any:
    try:
        return json.loads(text) if fmt == "json" else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source}: not valid TOML ({exc})") from None


def write_plan_file(path: str | Path, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the plan to {path}: {exc.strerror or exc}") from None


def toml_str(value: str) -> str:
    # A JSON string without ASCII escaping is a valid TOML basic string (same escapes).
    return json.dumps(value, ensure_ascii=False)


def toml_list(values: list[str], indent: str = "", short: int = 3) -> str:
    if len(values) <= short:
        return "[" + ", ".join(toml_str(v) for v in values) + "]"
    return "[\n" + "".join(f"{indent}    {toml_str(v)},\n" for v in values) + f"{indent}]"


def toml_comment(text: str) -> list[str]:
    """`text` as TOML comment lines (one per line of it)."""
    return [f"# {line}".rstrip() for line in text.splitlines() or [""]]
