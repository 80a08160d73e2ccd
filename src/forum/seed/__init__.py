"""The deterministic legacy forum database: what pgferry is built, tested and measured on.

    from forum.seed import generate, describe, summarize
    report = generate("forum.db", scale=0.1, seed=42)      # SeedReport: rows per table, seconds, bytes
    describe(0.1)                                          # list[PlantedDefect]: the answer key
    summarize("forum.db")                                  # DatabaseSummary read back from the file

Same (scale, seed) gives a byte-identical `sqlite3 forum.db .dump`. Layout: `schema` (tables as
data), `distributions` (time, popularity, text), `world` (facts shared by generators), `users` and
`tables` (row generators), `tally` (denormalised counters), `indexes` (planted and missing
indexes), `writer` (writing the file), `describe` (the defect list and the read-back summary).
"""

from forum.seed.describe import DatabaseSummary, PlantedDefect, defect_counts, describe, summarize
from forum.seed.schema import MAX_SCALE
from forum.seed.writer import SeedError, SeedReport, generate, parse_scale, parse_seed

__all__ = [
    "MAX_SCALE",
    "DatabaseSummary",
    "PlantedDefect",
    "SeedError",
    "SeedReport",
    "defect_counts",
    "describe",
    "generate",
    "parse_scale",
    "parse_seed",
    "summarize",
]
