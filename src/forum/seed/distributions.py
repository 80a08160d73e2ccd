"""Random shapes of the legacy data, computed per batch with numpy in O(1) memory.

Everything here is a pure function of (seed, index) or of a per-batch `numpy.random.Generator`, so a
batch can be generated without knowing any other batch: that is what keeps memory flat at any scale
and the output byte-identical for the same seed.

- Time: three years ending at a fixed instant (never "now"), with an exponential growth of activity
  (later months busier). The i-th of n rows of a table gets a stratified time, so row ids follow time
  the way AUTOINCREMENT ids do in a real application, and the number of rows that exist at time t is
  known without looking (`existing`).
- Popularity: Zipf ranks from a continuous inverse CDF, mapped to ids by a fixed affine permutation,
  so "topic 1 is the most popular" is not an artefact and no table of ranks is kept.
- Text: slices of one precomputed word corpus (cheap: a slice is a memcpy).
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

import numpy as np

START = datetime(2022, 7, 1)
END = datetime(2025, 7, 1)  # exclusive; fixed so the same seed always gives the same file
START_EPOCH = calendar.timegm(START.timetuple())
SPAN_SECONDS = int((END - START).total_seconds())
GROWTH = 1.5  # activity rate grows by e**GROWTH (about 4.5x) from the first day to the last


def batch_rng(seed: int, *stream: int) -> np.random.Generator:
    """An independent generator for one batch of one table: batches never share state."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *stream])))


def hash_unit(index: np.ndarray, key: int) -> np.ndarray:
    """A uniform [0, 1) value per index (splitmix64): random-looking yet a pure function of the index."""
    with np.errstate(over="ignore"):
        x = (index.astype(np.uint64) + np.uint64(key & 0xFFFFFFFFFFFFFFFF)) * np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def growth_cdf(fraction: np.ndarray | float) -> np.ndarray | float:
    """Share of all activity that happened before `fraction` of the time span."""
    return np.expm1(GROWTH * np.asarray(fraction)) / math.expm1(GROWTH)


def growth_inverse(u: np.ndarray) -> np.ndarray:
    """Time (as a fraction of the span) by which a share u of the activity happened: ln(1+u(e^k-1))/k."""
    return np.log1p(u * math.expm1(GROWTH)) / GROWTH


def stratified_seconds(index: np.ndarray, n: int, key: int) -> np.ndarray:
    """Seconds since START of the index-th of n rows: row i falls in the i-th of n equal-activity strata.

    Row 0 is at START exactly, so every table has a row that exists before anything refers to it.
    """
    u = (index + hash_unit(index, key) * (index > 0)) / n
    return np.minimum((growth_inverse(u) * SPAN_SECONDS).astype(np.int64), SPAN_SECONDS - 1)


def existing(seconds: np.ndarray, n: int) -> np.ndarray:
    """How many of n stratified rows surely exist at `seconds` (row i exists once (i+1)/n <= F(t)).

    Rounded down with a margin: erring low only makes a row pick among slightly older rows.
    """
    return np.floor(n * growth_cdf(seconds / SPAN_SECONDS) - 1e-6).astype(np.int64)


class Popularity:
    """Zipf popularity over n ids: draw a rank by inverse CDF, map it to an index by an affine permutation.

    The permutation index = (a * rank + b) mod n with gcd(a, n) = 1 is a bijection that needs no table,
    so the most popular topic is some topic in the middle of the history, not topic 1.
    """

    def __init__(self, n: int, exponent: float, key: int) -> None:
        self.n = n
        self.exponent = exponent
        a = (key * 2654435761 + 1_000_003) % max(n, 1) or 1
        while math.gcd(a, n) != 1:
            a += 1
        self.a = a
        self.b = (key * 40503 + 7) % max(n, 1)

    def ranks(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Zipf ranks in [0, n) from the continuous density x**-s on [1, n+1]."""
        u = rng.random(size)
        top = float(self.n + 1)
        if abs(self.exponent - 1.0) < 1e-9:
            x = np.power(top, u)
        else:
            one_minus_s = 1.0 - self.exponent
            x = np.power(1.0 - u * (1.0 - top**one_minus_s), 1.0 / one_minus_s)
        return np.clip(x.astype(np.int64) - 1, 0, self.n - 1)

    def indexes(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return (self.a * self.ranks(rng, size) + self.b) % self.n

    def pick_existing(self, rng: np.random.Generator, limit: np.ndarray, tries: int = 8) -> np.ndarray:
        """A popular index below limit[j] for each j (rows can only point at rows that already exist).

        Redraws the picks that landed on rows not yet created; after `tries` rounds the rest pick
        uniformly among the existing ones. Every limit must be at least 1 (row 0 exists from START).
        """
        size = len(limit)
        picks = self.indexes(rng, size)
        bad = np.flatnonzero(picks >= limit)
        for _ in range(tries):
            if not len(bad):
                return picks
            picks[bad] = self.indexes(rng, len(bad))
            bad = bad[picks[bad] >= limit[bad]]
        if len(bad):
            picks[bad] = (rng.random(len(bad)) * limit[bad]).astype(np.int64)
        return picks


@cache
def _day_strings() -> list[str]:
    days = SPAN_SECONDS // 86400 + 60  # room for expiry dates past END
    return [(START + timedelta(days=d)).strftime("%Y-%m-%d ") for d in range(days)]


@cache
def _time_strings() -> list[str]:
    two = [f"{k:02d}" for k in range(60)]
    return [f"{h}:{m}:{s}" for h in two[:24] for m in two for s in two]


def timestamps(seconds: np.ndarray) -> list[str]:
    """'YYYY-MM-DD HH:MM:SS' text, as the legacy app stored times: two table lookups per value."""
    days, times = _day_strings(), _time_strings()
    day, sec = np.divmod(seconds, 86400)
    return [days[d] + times[s] for d, s in zip(day.tolist(), sec.tolist(), strict=True)]


_WORD_TEXT = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but "
    "have an they you were her she there been one all we their has would when if so no more what up "
    "out can who them some other time could into about than only its then two may first any like "
    "new these over such after also did many before must through back years where much your way well "
    "down should because each just those people how too little state good very make world still own "
    "see men work long here get both between life being under never day same another know while last "
    "might great old year off come since against go came right used take three database query index "
    "table sqlite postgres migration server thread reply topic wiki page forum user session cache "
    "latency write lock journal backup replica pool connection schema column row commit rollback "
    "release build deploy patch issue feature config plugin theme avatar profile link community "
    "moderator post thanks please help question answer works broken fixed slow fast memory disk"
)
_WORDS = tuple(_WORD_TEXT.split())
VOCAB = np.array(_WORDS)
CORPUS_WORDS = 400_000


@cache
def corpus() -> tuple[str, np.ndarray]:
    """A fixed text of random words (seed-independent) and the offsets where its words start."""
    rng = batch_rng(0x5EED, 0)
    picks = rng.integers(0, len(_WORDS), CORPUS_WORDS)
    stops = rng.random(CORPUS_WORDS) < 0.08  # a full stop after about one word in twelve
    words = [_WORDS[i] for i in picks.tolist()]
    for i in np.flatnonzero(stops).tolist():
        words[i] += "."
    lengths = np.array([len(w) for w in _WORDS])[picks] + stops + 1
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    return " ".join(words), starts


class TextRef(NamedTuple):
    """Texts as (offset, length) pairs into the corpus: a few bytes each to pass between processes.

    The corpus is the same in every process (fixed seed), so the process that inserts the rows cuts
    the strings itself instead of receiving megabytes of text through a pipe.
    """

    offsets: np.ndarray
    lengths: np.ndarray

    def materialize(self) -> list[str]:
        text, _ = corpus()
        return [text[o : o + n] for o, n in zip(self.offsets.tolist(), self.lengths.tolist(), strict=True)]


def text_refs(rng: np.random.Generator, lengths: np.ndarray) -> TextRef:
    """Texts of the given lengths, each a corpus slice starting at a word."""
    text, starts = corpus()
    limit = len(text) - int(lengths.max(initial=0)) - 1
    offsets = starts[rng.integers(0, int(np.searchsorted(starts, limit)), len(lengths))]
    return TextRef(offsets, lengths)


def texts(rng: np.random.Generator, lengths: np.ndarray) -> list[str]:
    """Like `text_refs`, as strings (for short texts that are masked or formatted further)."""
    return text_refs(rng, lengths).materialize()


def skewed_lengths(rng: np.random.Generator, size: int, low: int, high: int, power: float = 2.0) -> np.ndarray:
    """Lengths in [low, high], most of them short: low + (high - low) * u**power."""
    return (low + (high - low) * rng.random(size) ** power).astype(np.int64)


def words(rng: np.random.Generator, size: int, count: int) -> list[str]:
    """`size` phrases of `count` words each (titles, names)."""
    picks = VOCAB[rng.integers(0, len(VOCAB), (size, count))]
    return [" ".join(row) for row in picks.tolist()]


def choice(rng: np.random.Generator, options: Sequence[Any], weights: Sequence[float], size: int) -> list[Any]:
    """`size` picks from `options` with the given relative weights."""
    p = np.asarray(weights, dtype=np.float64)
    picks = np.searchsorted(np.cumsum(p / p.sum()), rng.random(size), side="right")
    return [options[i] for i in np.minimum(picks, len(options) - 1).tolist()]


def between(rng: np.random.Generator, low: np.ndarray, power: float = 1.0) -> np.ndarray:
    """A time between each `low` and the end of the span, skewed toward `low` when power > 1."""
    return low + (np.maximum(SPAN_SECONDS - 1 - low, 0) * rng.random(len(low)) ** power).astype(np.int64)


def masked(values: Sequence[Any], present: np.ndarray) -> list[Any]:
    """values[i] where present[i], else None (NULL)."""
    return [v if p else None for v, p in zip(values, present.tolist(), strict=True)]
