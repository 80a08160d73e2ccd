"""The forum on SQLite: its SQL (`queries`, the `sqlite` dialect) and how each mode opens the file (`settings`)."""
