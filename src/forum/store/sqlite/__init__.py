"""The SQLite backend: its SQL (`queries`) and its connections (`database`)."""
