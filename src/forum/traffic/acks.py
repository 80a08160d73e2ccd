"""What the traffic's users were told was written, and reading it back: a migration that loses or
changes an acknowledged write shows up here, as the user would see it (through the API).

Recorded per write that answered 2xx: a reply's id and content, a topic's id and title, a wiki
edit's slug and content. Read back: every reply and topic as it was acknowledged, and every edited
page's content one of the edits acknowledged for it (concurrent edits: the last to commit wins,
and the generator cannot tell which that was).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx

READ_BACK_CONCURRENCY = 8


@dataclass
class Acknowledged:
    replies: dict[int, str] = field(default_factory=dict)  # id: content
    topics: dict[int, str] = field(default_factory=dict)  # id: title
    wiki: dict[str, set[str]] = field(default_factory=dict)  # slug: the contents acknowledged

    @property
    def writes(self) -> int:
        return len(self.replies) + len(self.topics) + sum(len(v) for v in self.wiki.values())

    def record(self, endpoint: str, path: str, sent: dict[str, Any], answer: dict[str, Any]) -> None:
        """Note one acknowledged write (`sent`: the JSON body; `answer`: the response's)."""
        if endpoint == "reply_create":
            self.replies[int(answer["id"])] = str(sent["content"])
        elif endpoint == "topic_create":
            self.topics[int(answer["id"])] = str(sent["title"])
        elif endpoint == "wiki_edit":
            self.wiki.setdefault(path.rsplit("/", 1)[-1], set()).add(str(sent["content"]))


async def read_back(client: httpx.AsyncClient, acknowledged: Acknowledged) -> list[str]:
    """Every acknowledged write read back through the API; a line per one that is not as acknowledged."""
    gate = asyncio.Semaphore(READ_BACK_CONCURRENCY)

    async def fetch(path: str) -> dict[str, Any] | str:
        async with gate:
            response = await client.get(path)
        return response.json() if response.status_code == 200 else f"GET {path} answered {response.status_code}"

    async def reply(reply_id: int, content: str) -> str | None:
        got = await fetch(f"/replies/{reply_id}")
        if isinstance(got, str):
            return f"reply {reply_id}: {got}"
        return None if got["content"] == content else f"reply {reply_id}: content {got['content']!r}, not {content!r}"

    async def topic(topic_id: int, title: str) -> str | None:
        got = await fetch(f"/topics/{topic_id}?limit=1")
        if isinstance(got, str):
            return f"topic {topic_id}: {got}"
        found = got["topic"]["title"]
        return None if found == title else f"topic {topic_id}: title {found!r}, not {title!r}"

    async def page(slug: str, contents: set[str]) -> str | None:
        got = await fetch(f"/wiki/{slug}")
        if isinstance(got, str):
            return f"wiki {slug}: {got}"
        return (
            None
            if got["content"] in contents
            else f"wiki {slug}: content is none of the {len(contents)} edits acknowledged"
        )

    checks = [
        *(reply(i, c) for i, c in acknowledged.replies.items()),
        *(topic(i, t) for i, t in acknowledged.topics.items()),
        *(page(s, c) for s, c in acknowledged.wiki.items()),
    ]
    return [problem for problem in await asyncio.gather(*checks) if problem is not None]


def read_back_sync(url: str, acknowledged: Acknowledged) -> list[str]:
    async def run() -> list[str]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            return await read_back(client, acknowledged)

    return asyncio.run(run())
