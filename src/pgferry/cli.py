"""The `pgferry` command: a thin adapter over the library.

Each command parses its options, makes one library call and renders the result (text, or one JSON
object with --json). Library errors (PgferryError) become one line on stderr and a non-zero exit,
never a traceback.
"""

from __future__ import annotations

import click

from pgferry.cli_advise import advise_command
from pgferry.cli_copy import copy_command, restore_rejects_command, verify_command
from pgferry.cli_doctor import doctor_command, tune_command
from pgferry.cli_migrate import migrate
from pgferry.cli_partitions import partitions
from pgferry.cli_split import split_command
from pgferry.cli_workload import workload


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pgferry", prog_name="pgferry")
def main() -> None:
    """pgferry: take an application off a struggling SQLite database and onto PostgreSQL.

    \b
    Commands work on any SQLite file. The workload commands read a log of the
    statements an application ran (JSON Lines, see docs/workload-format.md, or a
    plain .sql file) and group them by fingerprint.
    """


for command in (
    workload,
    copy_command,
    verify_command,
    restore_rejects_command,
    doctor_command,
    tune_command,
    split_command,
    migrate,
    advise_command,
    partitions,
):
    main.add_command(command)
