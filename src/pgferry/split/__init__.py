"""pgferry split: normalise a wide table into a core table and side tables, keep a view under the
old name so unchanged code still reads and writes it, and undo it exactly (docs/split.md).

    from pgferry.split import propose, load_plan
    plan = propose("app.db", "users")             # SplitPlan from the data (read-only)
    plan.dump("users-split.toml")                 # the editable plan file
    plan.profile.to_dict()                        # NULL-pattern evidence behind it

Layout: `profile` (one-pass NULL patterns), `hot` (workload statements on the table), `propose`
(plan from data), `plan` (plan file format), `validate` (refusals), `sqltext` (editing CREATE text),
`record` (what was done, kept in the database).
"""

from pgferry.split.plan import Family, SplitError, SplitPlan, load_plan, parse_plan
from pgferry.split.profile import ColumnProfile, TableProfile, profile_table
from pgferry.split.propose import propose

__all__ = [
    "ColumnProfile",
    "Family",
    "SplitError",
    "SplitPlan",
    "TableProfile",
    "load_plan",
    "parse_plan",
    "profile_table",
    "propose",
]
