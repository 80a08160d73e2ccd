"""The documentation keeps up with the code (sqlite-utils' docs tests are the model): every command and
option of both CLIs is mentioned in README.md or docs/, and every command the README shows exists."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from forum.cli import main as forum_main
from pgferry.cli import main as pgferry_main

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXT = "\n".join(path.read_text(encoding="utf-8") for path in DOCS)
CLIS = {"pgferry": pgferry_main, "forum": forum_main}


def commands(cmd: click.Command, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from commands(sub, (*path, name))


EVERY_COMMAND = [(path, cmd) for name, cli in CLIS.items() for path, cmd in commands(cli, (name,))]


@pytest.mark.parametrize(("path", "cmd"), EVERY_COMMAND, ids=[" ".join(p) for p, _c in EVERY_COMMAND])
def test_command_and_its_options_are_documented(path: tuple[str, ...], cmd: click.Command) -> None:
    assert " ".join(path) in TEXT, f"`{' '.join(path)}` is not mentioned in README.md or docs/"
    options = [o for p in cmd.params for o in getattr(p, "opts", []) if o.startswith("--") and o != "--help"]
    missing = [o for o in options if not re.search(re.escape(o) + r"(?![\w-])", TEXT)]
    assert not missing, f"`{' '.join(path)}`: {missing} not documented"


def readme_commands() -> list[list[str]]:
    """The commands in the README's shell blocks: `pgferry ...`, `forum ...` and `make ...`."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = []
    for block in re.findall(r"```sh\n(.*?)```", readme, flags=re.S):
        for line in block.splitlines():
            words = shlex.split(line.split("#")[0]) if line.strip() else []
            if words:
                words[0] = words[0].removeprefix(".venv/bin/")
                if words[0] in (*CLIS, "make"):
                    shown.append(words)
    shown += [["make", target] for target in re.findall(r"`make ([\w-]+)`", readme)]
    return shown


def test_every_command_in_the_readme_exists() -> None:
    shown = readme_commands()
    assert len(shown) >= 10  # the parser found the blocks
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(encoding="utf-8"), flags=re.M))
    for words in shown:
        if words[0] == "make":
            assert words[1] in targets, f"`make {words[1]}`: no such target"
            continue
        cmd: click.Command = CLIS[words[0]]
        for word in words[1:]:
            if not isinstance(cmd, click.Group) or word.startswith("-"):
                break
            assert word in cmd.commands, f"`{' '.join(words)}`: no command {word!r}"
            cmd = cmd.commands[word]
        options = {o for p in cmd.params for o in getattr(p, "opts", [])}
        for word in words[1:]:
            if word.startswith("--"):
                assert word.split("=")[0] in options, f"`{' '.join(words)}`: {cmd.name} has no option {word}"
