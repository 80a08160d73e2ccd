"""The `forum` command: the reference community platform pgferry is built and measured on."""

from __future__ import annotations

import click

from forum import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="forum")
def main() -> None:
    """forum: a community platform (users, forum, wiki, sessions, notifications) on SQLite.

    \b
    It is pgferry's demo and workload: `forum seed` writes a legacy database with
    the defects of the migration plan (missing and redundant indexes, a 42-column
    users table, text timestamps, JSON as text) at any scale.
    """
