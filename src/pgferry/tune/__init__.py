"""pgferry tune: turn the doctor's findings into changes, apply them in short steps, measure them.

    from pgferry.tune import tune
    result = tune("app.db", "capture.jsonl")                      # the plan only: nothing written
    result = tune("app.db", "capture.jsonl", apply=True)          # changes, rollback script, before/after

See docs/doctor.md.
"""

from pgferry.tune.apply import ApplyResult, apply_plan, index_set, rollback_script, run_script
from pgferry.tune.plan import DEFAULT_KINDS, ONLY_CHOICES, Step, TunePlan, build_plan
from pgferry.tune.replay import ReplayResult, replay
from pgferry.tune.run import TuneResult, tune

__all__ = [
    "DEFAULT_KINDS",
    "ONLY_CHOICES",
    "ApplyResult",
    "ReplayResult",
    "Step",
    "TunePlan",
    "TuneResult",
    "apply_plan",
    "build_plan",
    "index_set",
    "replay",
    "rollback_script",
    "run_script",
    "tune",
]
