"""Workloads: capture the statements an application runs, read them back, group them by shape.

The log format (JSON Lines, or a plain .sql file) is described in docs/workload-format.md.
"""

from pgferry.workload.capture import (
    CapturingConnection,
    CapturingCursor,
    JsonlSink,
    MemorySink,
    Sink,
    capture,
    current_request,
    new_request_id,
    request_scope,
)
from pgferry.workload.fingerprint import Fingerprint, fingerprint
from pgferry.workload.reader import SqlSplitter, detect_format, read_workload, split_sql
from pgferry.workload.record import Statement, decode_value, encode_value
from pgferry.workload.summary import FingerprintStats, summarize

__all__ = [
    "CapturingConnection",
    "CapturingCursor",
    "Fingerprint",
    "FingerprintStats",
    "JsonlSink",
    "MemorySink",
    "Sink",
    "SqlSplitter",
    "Statement",
    "capture",
    "current_request",
    "decode_value",
    "detect_format",
    "encode_value",
    "fingerprint",
    "new_request_id",
    "read_workload",
    "request_scope",
    "split_sql",
    "summarize",
]
