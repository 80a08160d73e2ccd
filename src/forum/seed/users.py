"""The users "god table": 42 columns, 10 always filled, 32 optional and about 93% NULL.

Optional columns come in families that a user fills together (a profile, a few social links, the
avatar settings, some profile details) and last_login, which 60% of users have. A family is drawn per
user with a family probability, then each member with a member probability (at least one member), so
a split proposal finds real co-occurrence and the NULL share lands near the plan's 93%:
expected filled optional cells per user = 0.6 + 0.12*5 + 0.05*6 + 0.08*3.32 + 0.10*4.5 = 2.22 of 32.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import numpy as np

from forum.seed import distributions as dist
from forum.seed.schema import USERS_FAMILIES
from forum.seed.world import Batch, World

# family: (probability a user has it, probability of each member given the family)
FAMILY_ODDS = {"profile": (0.12, 1.0), "avatar": (0.05, 1.0), "social": (0.08, 0.3), "details": (0.10, 0.5)}
LAST_LOGIN_ODDS = 0.6

_BCRYPT = np.frombuffer(b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", dtype=np.uint8)
_CITIES = ("Berlin", "Lisbon", "Toronto", "Austin", "Osaka", "Melbourne", "Nairobi", "Lyon", "Bogota", "Oslo")
_TIMEZONES = ("UTC", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Tokyo", "Australia/Sydney")
_LOCALES = ("en-US", "en-GB", "de-DE", "fr-FR", "ja-JP", "pt-BR", "es-ES")
_TITLES = ("Developer", "DBA", "SRE", "Student", "Designer", "Founder", "Analyst", "Teacher")
_BACKGROUNDS = ("none", "gradient-blue", "gradient-sunset", "stars", "grid")
_PRONOUNS = ("he/him", "she/her", "they/them")


def family_masks(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Per optional column, which of n users fill it (families drawn together, at least one member)."""
    masks: dict[str, np.ndarray] = {}
    for family, (p_family, p_member) in FAMILY_ODDS.items():
        members = USERS_FAMILIES[family]
        has = rng.random(n) < p_family
        chosen = rng.random((n, len(members))) < p_member
        none = np.flatnonzero(~chosen.any(axis=1))
        chosen[none, rng.integers(0, len(members), len(none))] = True
        chosen &= has[:, None]
        masks.update({col: chosen[:, k] for k, col in enumerate(members)})
    masks["last_login"] = rng.random(n) < LAST_LOGIN_ODDS
    return masks


def _password_hashes(rng: np.random.Generator, n: int) -> list[str]:
    raw = _BCRYPT[rng.integers(0, len(_BCRYPT), n * 53)].tobytes().decode()
    return ["$2b$12$" + raw[i * 53 : (i + 1) * 53] for i in range(n)]


# How to fill each optional column, called only for the users that have it:
# (generator, how many, their usernames, their ids) -> values.
Filler = Callable[[np.random.Generator, int, list[str], list[int]], list[Any]]


def _pick(options: tuple[str, ...], weights: tuple[float, ...] | None = None) -> Filler:
    return lambda rng, k, names, ids: dist.choice(rng, options, weights or (1,) * len(options), k)


def _birth_dates(rng: np.random.Generator, k: int, names: list[str], ids: list[int]) -> list[str]:
    return [(date(1960, 1, 1) + timedelta(days=d)).isoformat() for d in rng.integers(0, 17500, k).tolist()]


def _display_names(rng: np.random.Generator, k: int, names: list[str], ids: list[int]) -> list[str]:
    return [" ".join(part.title() for part in re.split(r"_|\d+", name) if part) for name in names]


OPTIONAL: dict[str, Filler] = {
    "display_name": _display_names,
    "bio": lambda rng, k, names, ids: dist.texts(rng, dist.skewed_lengths(rng, k, 40, 400)),
    "avatar_url": lambda rng, k, names, ids: [f"https://cdn.example.com/avatars/{i}.png" for i in ids],
    "location": _pick(_CITIES),
    "website_url": lambda rng, k, names, ids: [f"https://{u}.example.net" for u in names],
    "github_url": lambda rng, k, names, ids: [f"https://github.com/{u}" for u in names],
    "mastodon_url": lambda rng, k, names, ids: [f"https://mastodon.example/@{u}" for u in names],
    "discord_username": lambda rng, k, names, ids: [f"{u}#{1000 + i % 9000}" for u, i in zip(names, ids, strict=True)],
    "steam_url": lambda rng, k, names, ids: [f"https://steamcommunity.com/id/{u}" for u in names],
    "xbox_gamertag": lambda rng, k, names, ids: [u.replace("_", " ")[:15] for u in names],
    "psn_id": lambda rng, k, names, ids: [u[:16] for u in names],
    "bluesky_url": lambda rng, k, names, ids: [f"https://bsky.app/profile/{u}.bsky.social" for u in names],
    "twitter_handle": lambda rng, k, names, ids: [f"@{u[:15]}" for u in names],
    "linkedin_url": lambda rng, k, names, ids: [f"https://www.linkedin.com/in/{u}" for u in names],
    "youtube_url": lambda rng, k, names, ids: [f"https://www.youtube.com/@{u}" for u in names],
    "twitch_username": lambda rng, k, names, ids: names,
    "avatar_position_x": lambda rng, k, names, ids: rng.integers(0, 101, k).tolist(),
    "avatar_position_y": lambda rng, k, names, ids: rng.integers(0, 101, k).tolist(),
    "avatar_scale": lambda rng, k, names, ids: rng.integers(50, 201, k).tolist(),
    "avatar_rotation": lambda rng, k, names, ids: rng.integers(0, 360, k).tolist(),
    "avatar_border_color": lambda rng, k, names, ids: [f"#{c:06x}" for c in rng.integers(0, 1 << 24, k).tolist()],
    "avatar_background": _pick(_BACKGROUNDS),
    "pronouns": _pick(_PRONOUNS, (4, 4, 2)),
    "birth_date": _birth_dates,
    "timezone": _pick(_TIMEZONES),
    "locale": _pick(_LOCALES),
    "company": lambda rng, k, names, ids: [w.title() + " Ltd" for w in dist.words(rng, k, 1)],
    "job_title": _pick(_TITLES),
    "signature": lambda rng, k, names, ids: dist.texts(rng, dist.skewed_lengths(rng, k, 20, 120)),
    "phone_number": lambda rng, k, names, ids: [f"+1-555-01{i % 100:02d}" for i in ids],
    "theme_preference": _pick(("light", "dark", "system"), (3, 5, 2)),
}


def users_batch(world: World, batch: int, start: int, stop: int) -> Batch:
    rng = world.rng("users", batch)
    n = stop - start
    index = np.arange(start, stop)
    ids = (index + 1).tolist()
    created = world.seconds("users", index)
    first = dist.VOCAB[rng.integers(0, len(dist.VOCAB), n)].tolist()
    second = dist.VOCAB[rng.integers(0, len(dist.VOCAB), n)].tolist()
    names = [f"{a}_{b}{i}" for a, b, i in zip(first, second, ids, strict=True)]
    mask = family_masks(rng, n)
    has_login = mask.pop("last_login")
    columns: dict[str, list[Any]] = {
        "id": ids,
        "username": names,
        "email": [f"{u}@example.{('com', 'org', 'net')[i % 3]}" for u, i in zip(names, ids, strict=True)],
        "password_hash": _password_hashes(rng, n),
        "role": dist.choice(rng, ("user", "moderator", "admin"), (96, 3, 1), n),
        "status": dist.choice(rng, ("active", "inactive", "suspended", "banned", "deleted"), (88, 7, 3, 1, 1), n),
        "email_verified": (rng.random(n) < 0.8).astype(np.int64).tolist(),
        "created_at": dist.timestamps(created),
        "updated_at": dist.timestamps(dist.between(rng, created, power=3.0)),
        "last_login": dist.masked(dist.timestamps(dist.between(rng, created, power=0.3)), has_login),
        "login_count": np.where(has_login, 1 + rng.lognormal(2.0, 1.5, n).astype(np.int64), 0).tolist(),
    }
    for column, fill in OPTIONAL.items():
        where = np.flatnonzero(mask[column]).tolist()
        values: list[Any] = [None] * n
        filled = fill(rng, len(where), [names[i] for i in where], [ids[i] for i in where])
        for i, value in zip(where, filled, strict=True):
            values[i] = value
        columns[column] = values
    return Batch.of("users", columns)
