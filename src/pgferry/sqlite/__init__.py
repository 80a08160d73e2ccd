"""Read a SQLite file: open it safely, describe its schema, take a census of its data."""
