"""Change capture and catch-up: SQLite's changes followed into the copy while the application writes.

| module | job |
| --- | --- |
| `keys` | the key each table's entries carry; tables without one refused |
| `changelog` | the changelog, registry and install record inside the SQLite file |
| `triggers` | the AFTER INSERT / UPDATE / DELETE triggers that append keys to the changelog |
| `install` | install and remove capture in one transaction; notice a schema that moved under it |
| `current` | the current rows of changed keys, rendered as the copy renders them |
| `target` | one table on the PostgreSQL side: staging, upsert, delete, conflicting rows |
| `pgstate` | the migration's phase and the applier's position in PostgreSQL's control schema |
| `applier` | batches: read, apply, save the position in the same transaction, prune |
| `loop` | the loop both appliers run their batches in |
| `copied` | the captured tables with their plans and row identities (both directions read them here) |
| `migration` | `pgferry migrate start / follow / abort`; follow runs the applier the route calls for |
| `reverse` | after a cutover: PostgreSQL's changes captured and applied back into SQLite |
| `rollback` | `pgferry migrate rollback` |
| `status` | `pgferry migrate status` |
| `cutover`, `cutover_log` | `pgferry migrate cutover`; every attempt kept in the control schema |
"""
