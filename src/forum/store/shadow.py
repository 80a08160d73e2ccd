"""How the forum's two dialects' answers are compared on a dual route (pgferry.runtime.dual).

Most statements compare as they are: pgferry's comparison already sets engine differences aside
(0/1 and booleans, text and timestamps, JSON text and jsonb). Three things are the forum's own:
- the topic view is one statement with two shapes: SQLite returns the topic row and then one row per
  reply (UNION ALL), PostgreSQL one row with the replies as a JSON array (json_agg); both are made
  the topic and its list of replies before comparing;
- a topic's tags are a set: neither json_group_array nor json_agg promises an order, and SQLite's
  gives `[]` for none where PostgreSQL's gives NULL;
- `TABLES` lists each engine's own catalogue (SQLite's has pgferry's control tables): never shadowed.
"""

from __future__ import annotations

import json
from typing import Any

from pgferry.runtime.dual import Comparator, DualPolicy, RowDifference, compare_results
from pgferry.runtime.dual.compare import as_dict

_REPLY = ("id", "user_id", "content", "created_at", "updated_at", "username", "display_name", "avatar_url")


def _tags(value: Any) -> list[str]:
    names = json.loads(value) if isinstance(value, str) else list(value or [])
    return sorted(n for n in names if n is not None)


def _with_tag_set(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "tags": _tags(row["tags"])} if "tags" in row else row


def _rows(result: Any) -> list[dict[str, Any]]:
    if result is None:
        return []
    return [as_dict(r) for r in result] if isinstance(result, list) else [as_dict(result)]


def compare_tagged(control: Any, candidate: Any) -> list[RowDifference]:
    """Rows with a `tags` column: the tags compared as a set."""
    return compare_results([_with_tag_set(r) for r in _rows(control)], [_with_tag_set(r) for r in _rows(candidate)])


def _topic_view(result: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """([topic row], replies) from either shape."""
    rows = _rows(result)
    if not rows:
        return [], []
    head = dict(rows[0])
    embedded = head.pop("replies", None)
    if isinstance(embedded, str):
        embedded = json.loads(embedded)
    replies = embedded if embedded is not None else rows[1:]
    return [_with_tag_set(head)], [{k: as_dict(r).get(k) for k in _REPLY} for r in replies]


def compare_topic_view(control: Any, candidate: Any) -> list[RowDifference]:
    (topic_a, replies_a), (topic_b, replies_b) = _topic_view(control), _topic_view(candidate)
    return compare_results(topic_a, topic_b) + compare_results(replies_a, replies_b)


COMPARATORS: dict[str, Comparator] = {
    "TOPIC_GET": compare_tagged,
    "TOPIC_VIEW_FIRST": compare_topic_view,
    "TOPIC_VIEW_AFTER": compare_topic_view,
}


def dual_policy(sample: float = 1.0, budget_ms: int = 100, failures: int = 5, cooldown_s: float = 30.0) -> DualPolicy:
    """The forum's dual route: its comparators, its catalogue read never shadowed."""
    return DualPolicy(
        sample=sample,
        budget_ms=budget_ms,
        failures=failures,
        cooldown_s=cooldown_s,
        unshadowed=frozenset({"TABLES"}),
        comparators=COMPARATORS,
    )
