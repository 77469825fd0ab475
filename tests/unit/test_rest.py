"""kube/rest.py: the API calls the shell makes, built as the client's generated API classes
built them (method, path, query, headers; the same ApiClient), answered as decoded JSON, and
an answer other than 2xx raised as the client's ApiException."""

from __future__ import annotations

import asyncio.sslproto
from typing import Any

import pytest
from kubernetes.aio import client
from kubernetes.aio.client.exceptions import ApiException, NotFoundException

from greenlight.kube import cluster, rest


class Answer:
    """An aiohttp response as the REST client hands it on."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.reason, self.body = status, "Reason", body
        self.headers: dict[str, str] = {}

    async def read(self) -> bytes:
        return self.body


class Recorder:
    """The ApiClient's REST client: records each request, answers with the next answer."""

    def __init__(self, *answers: tuple[int, bytes]) -> None:
        self.answers = list(answers)
        self.sent: list[dict[str, Any]] = []

    async def request(self, method: str, url: str, **kw: Any) -> Any:
        from kubernetes.aio.client.rest import RESTResponse

        self.sent.append({"method": method, "url": url, **kw})
        return RESTResponse(Answer(*self.answers.pop(0)))


def api_client(*answers: tuple[int, bytes]) -> tuple[client.ApiClient, Recorder]:
    configuration = client.Configuration(host="https://k8s.test")
    configuration.api_key = {"authorization": "token"}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    c = client.ApiClient(configuration)
    c.rest_client = recorder = Recorder(*answers)
    return c, recorder


def test_query_parameters_are_named_as_the_api_names_them() -> None:
    assert rest._query_name("label_selector") == "labelSelector"
    assert rest._query_name("allow_watch_bookmarks") == "allowWatchBookmarks"
    assert rest._query_name("_continue") == "continue"
    assert rest._query_name("limit") == "limit"


async def test_a_call_is_sent_as_the_generated_client_sent_it_and_answers_json() -> None:
    c, sent = api_client((200, b'{"metadata": {"name": "web"}}'))
    found = await rest.CoreV1(c).patch_namespaced_service(
        "web", "ns", {"spec": {}}, field_manager="greenlight", force=True,
        _content_type="application/apply-patch+yaml",
    )  # fmt: skip
    assert found == {"metadata": {"name": "web"}}
    [request] = sent.sent
    assert request["method"] == "PATCH"
    assert request["url"] == (
        "https://k8s.test/api/v1/namespaces/ns/services/web?fieldManager=greenlight&force=true"
    )
    assert request["headers"]["Content-Type"] == "application/apply-patch+yaml"
    assert request["headers"]["Accept"] == "application/json"
    assert request["headers"]["authorization"] == "Bearer token"
    assert request["body"] == {"spec": {}}


async def test_custom_objects_and_lists_fill_in_their_path() -> None:
    c, sent = api_client((200, b"{}"), (200, b"{}"), (200, b"{}"))
    custom = rest.CustomObjects(c)
    await custom.patch_namespaced_custom_object_status(
        "greenlight.dev", "v1alpha1", "ns", "releases", "web", {"status": {}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    await rest.AppsV1(c).list_without_preload_content(
        "replicasets", "ns", label_selector="greenlight.dev/release", limit=500, _continue="t"
    )
    await rest.CoreV1(c).list_without_preload_content(
        "pods", None, watch=True, resource_version="7", _headers={"Accept": "application/x"}
    )
    urls = [r["url"].removeprefix("https://k8s.test") for r in sent.sent]
    assert urls == [
        "/apis/greenlight.dev/v1alpha1/namespaces/ns/releases/web/status",
        "/apis/apps/v1/namespaces/ns/replicasets?labelSelector=greenlight.dev/release"
        "&limit=500&continue=t",
        "/api/v1/pods?watch=true&resourceVersion=7",
    ]
    assert sent.sent[2]["headers"]["Accept"] == "application/x"


async def test_an_answer_other_than_2xx_is_the_clients_api_exception() -> None:
    c, _ = api_client((404, b'{"message": "services \\"web\\" not found"}'), (409, b"{}"))
    with pytest.raises(NotFoundException) as missing:
        await rest.CoreV1(c).read_namespaced_service("web", "ns")
    assert missing.value.status == 404 and "not found" in str(missing.value.body)
    with pytest.raises(ApiException) as taken:
        await rest.CoreV1(c).create_namespaced_event("ns", {"metadata": {"name": "e"}})
    assert taken.value.status == 409


def test_tls_connections_read_into_a_smaller_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each TLS connection keeps a read buffer of SSLProtocol.max_size for its life: the
    operator caps it (`cluster.connect`), and never raises one already smaller."""
    monkeypatch.setattr(asyncio.sslproto.SSLProtocol, "max_size", 256 * 1024)
    cluster.smaller_tls_reads()
    assert asyncio.sslproto.SSLProtocol.max_size == cluster.TLS_READ_BUFFER == 64 * 1024
    monkeypatch.setattr(asyncio.sslproto.SSLProtocol, "max_size", 16 * 1024)
    cluster.smaller_tls_reads()
    assert asyncio.sslproto.SSLProtocol.max_size == 16 * 1024
