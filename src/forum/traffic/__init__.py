"""Simulated forum users: `forum traffic`, and the library call behind it.

from forum.traffic import TrafficOptions, run_traffic
report = run_traffic("http://127.0.0.1:8000", TrafficOptions(users=50, duration_s=15, seed=1))
report.to_dict()   # the JSON object `forum traffic --json` prints
"""

from forum.traffic.run import TrafficError, TrafficOptions, check_loopback, run_traffic
from forum.traffic.stats import TrafficReport, parse_server_timing

__all__ = ["TrafficError", "TrafficOptions", "TrafficReport", "check_loopback", "parse_server_timing", "run_traffic"]
