"""Cached values as bytes, with the format, the caller's version and the stamp they were computed under.

A value is read back only when its version is the caller's (a schema change that bumps the version
never reads the old shape) and its stamp is current (no tag it carries was invalidated since). The
payload is pickle: Redis must be as trusted as the database (loopback, or a private network with
AUTH), since whoever writes to it chooses what the application unpickles.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from typing import Any

MAGIC = b"pgferry-cache/1\n"

Stamp = tuple[str, ...]  # the epoch, then the generation of each tag, in the caller's tag order


@dataclass(frozen=True)
class Stored:
    version: str
    stamp: Stamp
    fresh_until: float  # time.time(): past it, one caller recomputes while others are served this
    value: Any


def encode(stored: Stored) -> bytes:
    header = json.dumps({"v": stored.version, "s": list(stored.stamp), "f": stored.fresh_until}).encode()
    return MAGIC + header + b"\n" + pickle.dumps(stored.value, protocol=pickle.HIGHEST_PROTOCOL)


def decode(blob: bytes, version: str) -> Stored | None:
    """The stored value, or None when it is another format or version (never unpickled then)."""
    if not blob.startswith(MAGIC):
        return None
    header, sep, payload = blob[len(MAGIC) :].partition(b"\n")
    if not sep:
        return None
    try:
        meta = json.loads(header)
    except ValueError:
        return None
    if not isinstance(meta, dict) or meta.get("v") != version:
        return None
    return Stored(version, tuple(str(g) for g in meta["s"]), float(meta["f"]), pickle.loads(payload))
