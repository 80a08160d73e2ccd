"""PostgreSQL-side helpers: a throwaway local cluster, DSN handling."""
