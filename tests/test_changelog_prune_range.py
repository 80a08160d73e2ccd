"""changelog.prune_range, as the reverse applier uses it: any mix of batches (head read, writes,
their range pruned, in one transaction) and other writers' entries leaves exactly the others'
entries, in commit order, all above the position the changelog started at (so a stray write is
never taken for an applied one, and a seq once a stray's is never given again)."""

from __future__ import annotations

import sqlite3

from hypothesis import given
from hypothesis import strategies as st

from pgferry.capture import changelog

# each step: ("stray", _) one entry by another writer; ("batch", n) n entries of our own, pruned
steps = st.lists(st.tuples(st.sampled_from(["stray", "batch"]), st.integers(0, 4)), max_size=30)


def log_one(conn: sqlite3.Connection, key: int) -> int:
    """An entry as a capture trigger writes it (seq: max + 1); its seq."""
    cursor = conn.execute(f"INSERT INTO {changelog.CHANGELOG} (tbl, k1) VALUES (1, ?)", (key,))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


@given(st.integers(0, 3), steps)
def test_batches_prune_their_own_entries_and_only_them(already: int, plan: list[tuple[str, int]]) -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    changelog.create_changelog(conn, 1)
    for i in range(already):  # entries up to the cutover's head
        log_one(conn, -i)
    position = changelog.head(conn)
    strays: list[tuple[int, int]] = []
    for number, (kind, n) in enumerate(plan):
        if kind == "stray":
            strays.append((log_one(conn, number), number))
            continue
        conn.execute("BEGIN IMMEDIATE")
        before = changelog.head(conn)
        for _ in range(n):
            log_one(conn, 10_000 + number)
        assert changelog.prune_range(conn, before, changelog.head(conn)) == n
        conn.execute("COMMIT")
    above = conn.execute(f"SELECT seq, k1 FROM {changelog.CHANGELOG} WHERE seq > ? ORDER BY seq", (position,))
    assert above.fetchall() == strays  # every other writer's entry, in commit order, none of ours
    assert changelog.size(conn) == already + len(strays)
