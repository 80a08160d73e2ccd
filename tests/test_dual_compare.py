"""The dual route's comparison (pgferry.runtime.dual.compare), property-tested: what each engine
gives for the same stored value is equivalent, a changed value is not, and results are told apart
row by row (missing, extra, changed field, order) by key. Also the breaker's states and the log's
JSON form, which need no server."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pgferry.runtime.dual import Breaker, Discrepancy, DiscrepancyLog, RowDifference, compare_results, equivalent

naive = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)
finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | st.integers() | finite | st.text(max_size=10) | st.binary(max_size=8) | naive


@given(scalars)
def test_every_value_is_equivalent_to_itself(value: Any) -> None:
    assert equivalent(value, value)


@given(scalars, scalars)
def test_equivalence_is_symmetric(a: Any, b: Any) -> None:
    assert equivalent(a, b) == equivalent(b, a)


@given(naive, st.sampled_from([" ", "T"]), st.sampled_from(["auto", "microseconds"]))
def test_iso_text_and_the_datetime_it_names(value: dt.datetime, sep: str, timespec: str) -> None:
    text = value.isoformat(sep=sep, timespec=timespec)
    assert equivalent(text, value) and equivalent(value, text)
    assert equivalent(text + "Z", value)  # an aware instant against a naive one taken as UTC
    assert not equivalent(text, value + dt.timedelta(microseconds=1))
    assert equivalent(value.date().isoformat(), value.date()) and not equivalent("not a date", value)


@given(st.booleans())
def test_sqlite_integers_and_booleans(flag: bool) -> None:
    assert equivalent(int(flag), flag) and not equivalent(int(not flag), flag)
    assert not equivalent(2, True) and not equivalent("1", True)


@given(finite)
def test_floats_and_decimals_when_exact(value: float) -> None:
    assert equivalent(value, Decimal(repr(value))) and equivalent(Decimal(value), value)
    assert not equivalent(value, Decimal(repr(value)).next_plus()) and not equivalent(
        Decimal(repr(value)).next_minus(), value
    )


def test_decimal_digits_a_float_does_not_print_differ() -> None:
    assert equivalent(0.1, Decimal("0.1")) and equivalent(2.5, Decimal("2.50"))
    assert not equivalent(0.1, Decimal("0.1000001")) and not equivalent(1, Decimal("1.5"))


@given(json_values.filter(lambda v: isinstance(v, dict | list)))
def test_json_text_and_the_value_it_parses_to(value: Any) -> None:
    text = json.dumps(value)
    assert equivalent(text, value) and equivalent(value, text)
    changed = [*value, "more"] if isinstance(value, list) else {**value, "\x00new": 1}
    assert not equivalent(text, changed)


def test_other_types_across_engines() -> None:
    u = uuid.uuid4()
    assert equivalent(str(u).upper(), u) and not equivalent(str(uuid.uuid4()), u)
    assert equivalent(b"\x00\xff", memoryview(b"\x00\xff")) and not equivalent(b"\x00", b"\x01")
    assert equivalent(None, None) and not equivalent(None, 0) and not equivalent("", None)
    assert equivalent("12:30:00", dt.time(12, 30)) and not equivalent("12:31", dt.time(12, 30))


rows = st.lists(
    st.fixed_dictionaries({"id": st.integers(0, 50), "name": st.text(max_size=5), "flag": st.booleans()}),
    max_size=8,
    unique_by=lambda r: r["id"],
)


@given(rows, st.randoms(use_true_random=False))
def test_results_are_compared_by_key(control: list[dict[str, Any]], rnd: Any) -> None:
    as_sqlite = [{**r, "flag": int(r["flag"])} for r in control]  # SQLite's 0/1 against booleans
    assert compare_results(as_sqlite, control) == []
    if len(control) >= 2:
        shuffled = control[::-1]
        assert [d.kind for d in compare_results(as_sqlite, shuffled)] == ["order"]
    if control:
        victim = rnd.choice(control)
        missing = [r for r in control if r is not victim]
        assert compare_results(as_sqlite, missing) == [RowDifference(victim["id"], "missing")]
        assert compare_results(missing, as_sqlite) == [RowDifference(victim["id"], "extra")]
        changed = [{**r, "name": r["name"] + "!"} if r is victim else r for r in control]
        assert compare_results(as_sqlite, changed) == [
            RowDifference(victim["id"], "differs", {"name": (victim["name"], victim["name"] + "!")})
        ]


def test_rowcounts_single_rows_and_columns_one_side_lacks() -> None:
    assert compare_results(1, 1) == [] and compare_results(1, 0) == [
        RowDifference(None, "rowcount", {"rowcount": (1, 0)})
    ]
    assert compare_results(None, None) == [] and compare_results({"id": 1}, None) == [RowDifference(1, "missing")]
    (diff,) = compare_results({"id": 1, "a": 1}, {"id": 1, "b": 1})
    assert diff.fields == {"a": (1, "<no such column>"), "b": ("<no such column>", 1)}
    # no column named id: the first column is the key
    assert compare_results([{"slug": "x", "n": 1}], [{"slug": "x", "n": 2}])[0].key == "x"


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_states() -> None:
    clock = Clock()
    breaker = Breaker(failures=3, cooldown_s=10, clock=clock)
    for ok in (False, False, True, False, False):  # a success resets the count
        breaker.done(breaker.allow(), ok)  # type: ignore[arg-type]
    assert breaker.state == "closed"
    early = breaker.allow()
    breaker.done(breaker.allow(), False)  # type: ignore[arg-type]
    assert breaker.state == "open" and breaker.allow() is None
    breaker.done(early, True)  # type: ignore[arg-type]  # began before it opened: ignored
    assert breaker.state == "open"
    clock.now = 10
    trial = breaker.allow()
    assert trial is not None and trial.trial and breaker.allow() is None  # one trial at a time
    breaker.done(trial, None)  # ended without a verdict: another trial may go
    trial = breaker.allow()
    assert trial is not None
    breaker.done(trial, True)
    assert breaker.state == "closed" and breaker.describe()["opened"] == 1


def test_log_entries_as_json_lines(tmp_path: Any) -> None:
    got: list[Discrepancy] = []
    log = DiscrepancyLog(capacity=2, path=tmp_path / "d.jsonl", on_record=got.append)
    when = dt.datetime(2025, 6, 1, 10, 0)
    for i in range(3):
        log.record(
            Discrepancy(
                "mismatch", "GET", (i, when, b"\x01", Decimal("1.5")), (RowDifference(i, "differs", {"v": (1, True)}),)
            )
        )
    assert [e.params[0] for e in log.recent()] == [1, 2] and len(got) == 3  # the ring keeps the latest
    log.close()
    lines = [json.loads(x) for x in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and lines[2]["params"] == [2, "2025-06-01T10:00:00", {"hex": "01"}, "1.5"]
    assert lines[2]["rows"] == [{"key": 2, "kind": "differs", "fields": {"v": [1, True]}}]
    assert log.describe()["total"] == 3
