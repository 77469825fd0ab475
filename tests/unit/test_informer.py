"""Informers and indexes, over scripted list and watch responses (the API server's wire format):
the first list is applied in one pass before `synced`; a watch is resumed from the last
resourceVersion (bookmarks included); a 410 relists and reports only what changed or went."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from greenlight.kube import informer
from greenlight.kube.informer import Index, Informer


def obj(name: str, rv: int, uid: str | None = None) -> dict[str, Any]:
    meta = {"name": name, "namespace": "ns", "uid": uid or f"uid-{name}"}
    return {"metadata": {**meta, "resourceVersion": str(rv), "labels": {"a": "b"}}}


class Response:
    def __init__(self, body: bytes, status: int = 200) -> None:
        self.status, self.body = status, body
        self.content = self

    async def read(self) -> bytes:
        return self.body

    async def text(self) -> str:
        return self.body.decode()

    async def iter_any(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.body), 7):  # lines split across chunks
            yield self.body[i : i + 7]

    def release(self) -> None:
        pass


class Server:
    """Answers lists and watches from scripts; records each call's resourceVersion."""

    def __init__(self, lists: list[list[dict[str, Any]]], watches: list[list[dict[str, Any]]]):
        self.lists, self.watches = lists, watches
        self.calls: list[tuple[str, str | None]] = []
        self.done = asyncio.Event()

    async def __call__(self, **kw: Any) -> Response:
        if kw.get("watch"):
            self.calls.append(("watch", kw["resource_version"]))
            if not self.watches:
                self.done.set()
                await asyncio.Event().wait()  # the stream stays open, quiet
            lines = b"".join(json.dumps(e).encode() + b"\n" for e in self.watches.pop(0))
            return Response(lines)
        self.calls.append(("list", kw.get("_continue")))
        items = self.lists[0]
        start, limit = int(kw.get("_continue") or 0), kw["limit"]
        rv = max((int(i["metadata"]["resourceVersion"]) for i in items), default=1)
        meta = {"resourceVersion": str(rv)}
        if start + limit < len(items):
            meta["continue"] = str(start + limit)
        else:
            self.lists.pop(0)
        body = {"metadata": meta, "items": items[start : start + limit]}
        return Response(json.dumps(body).encode())


async def follow(server: Server) -> list[tuple[str, str, str]]:
    seen: list[tuple[str, str, str]] = []

    def handler(kind: str, body: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        seen.append((kind, meta["name"], meta.get("resourceVersion", "-")))

    informer = Informer("test", server, handler, 60, 5)
    task = asyncio.create_task(informer.run())
    await asyncio.wait_for(server.done.wait(), 5)
    assert informer.synced.is_set()
    task.cancel()
    return seen


async def test_list_then_watch_from_the_lists_version_and_bookmarks() -> None:
    bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}}
    server = Server(
        lists=[[obj("a", 5), obj("b", 6)]],
        watches=[
            [{"type": "MODIFIED", "object": obj("a", 7)}, bookmark],
            [{"type": "DELETED", "object": obj("b", 10)}],
        ],
    )
    seen = await follow(server)
    assert seen == [
        ("ADDED", "a", "5"), ("ADDED", "b", "6"), ("MODIFIED", "a", "7"), ("DELETED", "b", "10")
    ]  # fmt: skip
    assert server.calls == [("list", None), ("watch", "6"), ("watch", "9"), ("watch", "10")]


async def test_a_410_relists_and_reports_only_changes_and_deletions() -> None:
    server = Server(
        lists=[[obj("a", 5), obj("b", 6), obj("c", 7)], [obj("a", 5), obj("c", 12), obj("d", 13)]],
        watches=[[{"type": "ERROR", "object": {"code": 410, "message": "too old"}}]],
    )
    seen = await follow(server)
    assert seen[3:] == [("MODIFIED", "c", "12"), ("ADDED", "d", "13"), ("DELETED", "b", "-")]
    assert server.calls == [("list", None), ("watch", "7"), ("list", None), ("watch", "13")]


async def test_a_failing_handler_does_not_stop_the_others() -> None:
    calls = []

    def handler(kind: str, body: Mapping[str, Any]) -> None:
        calls.append(body["metadata"]["name"])
        if body["metadata"]["name"] == "a":
            raise ValueError("boom")

    server = Server(lists=[[obj("a", 1), obj("b", 2)]], watches=[])
    task = asyncio.create_task(Informer("test", server, handler, 60, 5).run())
    await asyncio.wait_for(server.done.wait(), 5)
    task.cancel()
    assert calls == ["a", "b"]


async def test_a_long_list_comes_in_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(informer, "PAGE", 2)
    server = Server(lists=[[obj(f"o{i}", 10 + i) for i in range(5)]], watches=[])
    seen = await follow(server)
    assert [name for _, name, _ in seen] == ["o0", "o1", "o2", "o3", "o4"]
    assert server.calls == [("list", None), ("list", "2"), ("list", "4"), ("watch", "14")]


def test_an_index_gathers_values_by_key_and_forgets_an_objects_old_keys() -> None:
    index = Index()
    index.put("d1", {("ns", "web"): "v1"})
    index.put("d2", {("ns", "web"): "v2"})
    assert sorted(index[("ns", "web")]) == ["v1", "v2"]
    index.put("d1", {("ns", "api"): "v1"})  # relabelled to another Release
    assert list(index[("ns", "web")]) == ["v2"] and list(index[("ns", "api")]) == ["v1"]
    index.remove("d2")
    index.put("d1", None)
    assert dict(index) == {} and index.get(("ns", "web"), ()) == ()
