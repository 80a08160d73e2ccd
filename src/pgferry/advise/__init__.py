"""`pgferry advise DSN`: index advice for a PostgreSQL database from its own workload.

| module | job |
| --- | --- |
| `workload` | the statements `pg_stat_statements` has seen: calls, time, rows; their fingerprints |
| `catalog` | the tables, columns and indexes, with their usage and write counts |
| `candidates` | the indexes a statement's predicates could use (pgferry.doctor.predicates on PostgreSQL's SQL) |
| `hypo` | one session with HypoPG: a statement's generic plan cost without and with a hypothetical index |
| `existing` | duplicate, prefix-covered and unused indexes (pghero's rules, with pg_stat_user_indexes) |
| `advisor` | everything together: proposals ranked by time saved net of their write cost, and reasons |
"""
