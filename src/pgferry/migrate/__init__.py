"""SQLite -> PostgreSQL: schema translation, bulk copy, verification."""
