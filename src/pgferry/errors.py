"""One root exception for pgferry; the CLI turns any of them into a one-line message and exit code.

Messages name the object (file, table, column, row) and say what to do, because they are shown to
the user as they are.
"""


class PgferryError(Exception):
    """Base of every error pgferry raises on purpose."""

    exit_code = 2


class UsageError(PgferryError):
    """The user asked for something impossible: a bad argument, a missing file, a refused overwrite."""


class SourceError(PgferryError):
    """The SQLite source cannot be read: not a database, corrupt, locked."""


class TargetError(PgferryError):
    """The PostgreSQL target cannot be used: unreachable, wrong password, not empty."""


class ServerError(PgferryError):
    """A local server pgferry starts (PostgreSQL, Redis, PgBouncer) failed to start or stop."""


class WorkloadError(UsageError):
    """A workload log or .sql file cannot be read: missing, malformed (the message names file and line)."""
