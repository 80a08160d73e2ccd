"""The capture triggers: AFTER INSERT / UPDATE / DELETE on a table append the changed row's key to
the changelog.

Plain INSERTs only: an application's conflict clause (INSERT OR IGNORE, OR REPLACE) overrides the
one in a trigger's statements, and a plain INSERT into a table with no constraint besides an
automatic seq has nothing to conflict on, so every write is logged whatever clause it came with.
An UPDATE that changes the key logs the old key too: a second trigger, `AFTER UPDATE OF` the key
columns (SQLite codes it only into UPDATEs whose SET names one of them), whose WHEN compares
storage class and bytes, so an UPDATE that keeps the key costs one INSERT. FK cascades fire these triggers
like any other write; DELETE without WHERE does too (SQLite skips its truncate optimisation on a
table with triggers).
"""

from __future__ import annotations

from pgferry.capture.changelog import CHANGELOG, key_names
from pgferry.split.sync import differs
from pgferry.sqltext import quote_ident as q

PREFIX = "_pgferry_capture_"
EVENTS = ("insert", "update", "update_key", "delete")


def trigger_name(table: str, event: str) -> str:
    return f"{PREFIX}{event}_{table}"


def _log(table_id: int, row: str, key: tuple[str, ...]) -> str:
    columns = ", ".join(["tbl", *(q(k) for k in key_names(len(key)))])
    values = ", ".join([str(int(table_id)), *(f"{row}.{q(c)}" for c in key)])
    return f"INSERT INTO {q(CHANGELOG)} ({columns}) VALUES ({values});"


def capture_triggers(table_id: int, table: str, key: tuple[str, ...]) -> dict[str, str]:
    """{name: CREATE TRIGGER text} of the triggers capturing `table`, logged as number `table_id`."""
    on = q(table)
    key_changed = " OR ".join(differs(f"NEW.{q(c)}", f"OLD.{q(c)}") for c in key)
    key_set = f"UPDATE OF {', '.join(q(c) for c in key)}"  # coded only into UPDATEs that SET a key column
    bodies = {
        "insert": ("INSERT", "", _log(table_id, "NEW", key)),
        "update": ("UPDATE", "", _log(table_id, "NEW", key)),
        "update_key": (key_set, f" WHEN {key_changed}", _log(table_id, "OLD", key)),
        "delete": ("DELETE", "", _log(table_id, "OLD", key)),
    }
    return {
        trigger_name(table, event): f"CREATE TRIGGER {q(trigger_name(table, event))} AFTER {verb} ON {on}{when} "
        f"BEGIN {body} END"
        for event, (verb, when, body) in bodies.items()
    }
