"""Which existing indexes advise calls redundant (pgferry.advise.existing), on catalogs built by hand."""

from __future__ import annotations

from pgferry.advise.catalog import Catalog, PgIndex
from pgferry.advise.existing import redundant_indexes
from pgferry.sqlite.schema import Schema


def index(name: str, columns: tuple[str, ...], scans: int) -> PgIndex:
    return PgIndex(name, "public", "t", columns, (), False, False, False, f"CREATE INDEX {name}", scans, 8192)


def findings(*indexes: PgIndex) -> set[tuple[str, str, str | None]]:
    return {(f.kind, f.index, f.by) for f in redundant_indexes(Catalog(Schema(), {}, list(indexes), {}))}


def test_the_index_a_used_one_is_covered_by_is_not_called_unused() -> None:
    # every lookup went to t_b; t_b_a serves them too, so t_b is redundant, but t_b_a is not unused
    assert findings(index("t_b", ("b",), scans=40), index("t_b_a", ("b", "a"), scans=0)) == {
        ("covered", "t_b", "t_b_a")
    }


def test_the_keeper_of_a_used_duplicate_is_not_called_unused() -> None:
    found = findings(index("t_a", ("a",), scans=0), index("t_a_again", ("a",), scans=12))
    assert found == {("duplicate", "t_a_again", "t_a")}


def test_when_nothing_is_used_both_findings_stand() -> None:
    found = findings(index("t_b", ("b",), scans=0), index("t_b_a", ("b", "a"), scans=0))
    assert found == {("covered", "t_b", "t_b_a"), ("unused", "t_b_a", None)}
