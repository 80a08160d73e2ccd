"""The cutover hook of tests/test_apps_live_cutover.py: `python hook.py SWITCH SWITCHED SEEN`.

Run by `pgferry migrate cutover --hook` with SQLite's write lock held: writes PGFERRY_DSN into SWITCH
(the file the live application watches), waits until the application says it switched (SWITCHED,
at most WAIT_S: past its busy timeout a write blocked on the lock fails, so it gets there), records in
SEEN whether SQLite's write lock was still held then, and exits 0 (or 1: the cutover is undone)."""

import json
import os
import sqlite3
import sys
import time

WAIT_S = 30.0


def main(switch: str, switched: str, seen: str) -> int:
    with open(switch + ".tmp", "w", encoding="utf-8") as out:
        out.write(os.environ["PGFERRY_DSN"])
    os.replace(switch + ".tmp", switch)
    deadline = time.monotonic() + WAIT_S
    while not os.path.exists(switched):
        if time.monotonic() > deadline:
            print(f"the application did not switch in {WAIT_S:g} s", file=sys.stderr)
            return 1
        time.sleep(0.01)
    conn = sqlite3.connect(os.environ["PGFERRY_SQLITE"], timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        held = False
    except sqlite3.OperationalError:
        held = True
    conn.close()
    with open(seen, "w", encoding="utf-8") as out:
        json.dump({"lock_held": held, "schema": os.environ["PGFERRY_SCHEMA"]}, out)
    print("the application is on PostgreSQL")  # a hook's own output: `--json` must stay parseable
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
