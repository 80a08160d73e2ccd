"""pgferry doctor: diagnose a SQLite database against its real workload.

    from pgferry.doctor import diagnose
    report = diagnose("app.db", "capture.jsonl")      # Report: findings with evidence and fixes
    report.to_dict()                                  # what `pgferry doctor --json` prints

Findings are listed in docs/doctor.md; each module here finds one family of them.
"""

from pgferry.doctor.diagnose import diagnose
from pgferry.doctor.report import KINDS, Finding, Fix, Report
from pgferry.doctor.workload import WorkloadView, load_workload

__all__ = ["KINDS", "Finding", "Fix", "Report", "WorkloadView", "diagnose", "load_workload"]
