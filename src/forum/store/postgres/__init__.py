"""The forum on PostgreSQL: its dialect (`queries`) and connection settings (`settings`)."""
