"""The Kubernetes API calls the operator makes, over kubernetes.aio's `ApiClient`.

Not the client's generated API classes (`CoreV1Api`, ...): importing the eight the operator
used cost about 36 MiB of resident memory, a quarter of the operator at rest with 100
Releases. Each class brings a pydantic-annotated signature, docstring and bytecode for every
call of its group (about 2,000 functions in all), and the 340 model modules they import; the
operator makes some 30 of those calls. These keep the generated names and arguments of the
calls made, so the shell and its test fakes read as before, and go through the same
`ApiClient` (its configuration, authentication, connection pool and retries). What a call
returns is the object as the API server sent it, decoded JSON, never a model (the calls the
shell made already read raw JSON or turned models back into it); a `_without_preload_content`
call returns the response unread; an answer other than 2xx raises the client's `ApiException`
(`status`, `reason`, `body`), as the generated calls did.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from kubernetes.aio.client.api_client import ApiClient
from kubernetes.aio.client.exceptions import ApiException

JSON = "application/json"


def _query_name(name: str) -> str:
    """A Python keyword as the API's query parameter: label_selector -> labelSelector,
    _continue -> continue."""
    head, *rest = name.lstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class _Group:
    """One API group version (`/api/v1`, `/apis/apps/v1`, ...)."""

    def __init__(self, api_client: ApiClient, prefix: str = "") -> None:
        self.api_client = api_client
        self.prefix = prefix

    async def _send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        _request_timeout: Any = None,
        _content_type: str | None = None,
        _headers: dict[str, str] | None = None,
        **query: Any,
    ) -> Any:
        """The request, answered (a RESTResponse, its body not read yet). `path`: after the
        group's prefix, `{namespace}`-style parameters filled in from `query` (quoted)."""
        names = {k: query.pop(k) for k in ("namespace", "name", "group", "version", "plural")
                 if "{" + k + "}" in path}  # fmt: skip
        headers = {"Accept": JSON, **(_headers or {})}
        if body is not None:
            headers["Content-Type"] = _content_type or JSON
        # the body goes to the request as it is: already plain JSON, it needs none of the
        # client's model sanitizing (a walk of every value: 29 us for a status patch)
        method, url, header_params, _, post_params = await self.api_client.param_serialize(
            method=method,
            resource_path=self.prefix + path,
            path_params=names,
            query_params=[(_query_name(k), v) for k, v in query.items() if v is not None],
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        return await self.api_client.call_api(
            method, url, header_params, body, post_params, _request_timeout=_request_timeout
        )

    async def _raw(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """The aiohttp response, unread (the caller reads and releases it)."""
        response: aiohttp.ClientResponse = (await self._send(method, path, body, **kw)).response
        return response

    async def _json(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """The decoded answer; ApiException for one other than 2xx."""
        response = await self._send(method, path, body, **kw)
        data = await response.read()
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(
                http_resp=response, body=data.decode("utf-8", "replace"), data=None
            )
        return orjson.loads(data) if data else None

    async def list_without_preload_content(
        self, plural: str, namespace: str | None = None, **query: Any
    ) -> Any:
        """A list (or, with watch=True, a watch) of a kind, in a namespace or in all (None),
        unread: the informers decode it themselves."""
        if namespace is None:
            return await self._raw("GET", f"/{plural}", **query)
        return await self._raw("GET", f"/namespaces/{{namespace}}/{plural}", namespace=namespace,
                               **query)  # fmt: skip


_ONE = "/namespaces/{namespace}/%s/{name}"
_ALL = "/namespaces/{namespace}/%s"


class CoreV1(_Group):
    """/api/v1: Services, Pods, ConfigMaps, Secrets, Events."""

    def __init__(self, api_client: ApiClient) -> None:
        super().__init__(api_client, "/api/v1")

    async def read_namespaced_service(self, name: str, namespace: str, **kw: Any) -> Any:
        return await self._json("GET", _ONE % "services", name=name, namespace=namespace, **kw)

    async def read_namespaced_secret(self, name: str, namespace: str, **kw: Any) -> Any:
        return await self._json("GET", _ONE % "secrets", name=name, namespace=namespace, **kw)

    async def read_namespaced_config_map(self, name: str, namespace: str, **kw: Any) -> Any:
        return await self._json("GET", _ONE % "configmaps", name=name, namespace=namespace, **kw)

    async def patch_namespaced_service(
        self, name: str, namespace: str, body: Any, **kw: Any
    ) -> Any:
        return await self._json(
            "PATCH", _ONE % "services", body, name=name, namespace=namespace, **kw
        )

    async def patch_namespaced_pod_without_preload_content(
        self, name: str, namespace: str, body: Any, **kw: Any
    ) -> Any:
        return await self._raw("PATCH", _ONE % "pods", body, name=name, namespace=namespace, **kw)

    async def list_namespaced_pod(self, namespace: str, **kw: Any) -> Any:
        return await self._json("GET", _ALL % "pods", namespace=namespace, **kw)

    async def create_namespaced_secret(self, namespace: str, body: Any, **kw: Any) -> Any:
        return await self._json("POST", _ALL % "secrets", body, namespace=namespace, **kw)

    async def create_namespaced_config_map(self, namespace: str, body: Any, **kw: Any) -> Any:
        return await self._json("POST", _ALL % "configmaps", body, namespace=namespace, **kw)

    async def create_namespaced_event(self, namespace: str, body: Any, **kw: Any) -> Any:
        return await self._json("POST", _ALL % "events", body, namespace=namespace, **kw)


class AppsV1(_Group):
    """/apis/apps/v1: Deployments (and the ReplicaSets' list)."""

    def __init__(self, api_client: ApiClient) -> None:
        super().__init__(api_client, "/apis/apps/v1")

    async def read_namespaced_deployment(self, name: str, namespace: str, **kw: Any) -> Any:
        return await self._json("GET", _ONE % "deployments", name=name, namespace=namespace, **kw)

    async def read_namespaced_deployment_without_preload_content(
        self, name: str, namespace: str, **kw: Any
    ) -> Any:
        return await self._raw("GET", _ONE % "deployments", name=name, namespace=namespace, **kw)

    async def create_namespaced_deployment(self, namespace: str, body: Any, **kw: Any) -> Any:
        return await self._json("POST", _ALL % "deployments", body, namespace=namespace, **kw)

    async def patch_namespaced_deployment(
        self, name: str, namespace: str, body: Any, **kw: Any
    ) -> Any:
        return await self._json(
            "PATCH", _ONE % "deployments", body, name=name, namespace=namespace, **kw
        )

    async def delete_namespaced_deployment(self, name: str, namespace: str, **kw: Any) -> Any:
        return await self._json(
            "DELETE", _ONE % "deployments", name=name, namespace=namespace, **kw
        )


class BatchV1(_Group):
    """/apis/batch/v1: check Jobs."""

    def __init__(self, api_client: ApiClient) -> None:
        super().__init__(api_client, "/apis/batch/v1")

    async def create_namespaced_job(self, namespace: str, body: Any, **kw: Any) -> Any:
        return await self._json("POST", _ALL % "jobs", body, namespace=namespace, **kw)


class DiscoveryV1(_Group):
    """/apis/discovery.k8s.io/v1: EndpointSlices."""

    def __init__(self, api_client: ApiClient) -> None:
        super().__init__(api_client, "/apis/discovery.k8s.io/v1")

    async def list_namespaced_endpoint_slice(self, namespace: str, **kw: Any) -> Any:
        return await self._json("GET", _ALL % "endpointslices", namespace=namespace, **kw)


class AutoscalingV2(_Group):
    """/apis/autoscaling/v2: HorizontalPodAutoscalers (what points at an adopted workload)."""

    def __init__(self, api_client: ApiClient) -> None:
        super().__init__(api_client, "/apis/autoscaling/v2")

    async def list_namespaced_horizontal_pod_autoscaler(self, namespace: str, **kw: Any) -> Any:
        return await self._json("GET", _ALL % "horizontalpodautoscalers", namespace=namespace, **kw)


class PolicyV1(_Group):
    """/apis/policy/v1: PodDisruptionBudgets (what points at an adopted workload)."""

    def __init__(self, api_client: ApiClient) -> None:
        super().__init__(api_client, "/apis/policy/v1")

    async def list_namespaced_pod_disruption_budget(self, namespace: str, **kw: Any) -> Any:
        return await self._json("GET", _ALL % "poddisruptionbudgets", namespace=namespace, **kw)


class CoordinationV1(_Group):
    """/apis/coordination.k8s.io/v1: the leader election's Lease."""

    def __init__(self, api_client: ApiClient) -> None:
        super().__init__(api_client, "/apis/coordination.k8s.io/v1")

    async def read_namespaced_lease(self, name: str, namespace: str, **kw: Any) -> Any:
        return await self._json("GET", _ONE % "leases", name=name, namespace=namespace, **kw)

    async def create_namespaced_lease(self, namespace: str, body: Any, **kw: Any) -> Any:
        return await self._json("POST", _ALL % "leases", body, namespace=namespace, **kw)

    async def replace_namespaced_lease(
        self, name: str, namespace: str, body: Any, **kw: Any
    ) -> Any:
        return await self._json("PUT", _ONE % "leases", body, name=name, namespace=namespace, **kw)

    async def list_namespaced_lease_without_preload_content(self, namespace: str, **kw: Any) -> Any:
        return await self._raw("GET", _ALL % "leases", namespace=namespace, **kw)


_CUSTOM = "/apis/{group}/{version}"
_CUSTOM_ONE = _CUSTOM + "/namespaces/{namespace}/{plural}/{name}"
_CUSTOM_ALL = _CUSTOM + "/namespaces/{namespace}/{plural}"


class CustomObjects(_Group):
    """Any group's custom resources (Releases, groups, check templates, HTTPRoutes), with the
    generated CustomObjectsApi's arguments: group, version, [namespace,] plural[, name]."""

    async def get_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, **kw: Any
    ) -> Any:
        where = dict(group=group, version=version, namespace=namespace, plural=plural, name=name)
        return await self._json("GET", _CUSTOM_ONE, **where, **kw)

    async def list_cluster_custom_object(
        self, group: str, version: str, plural: str, **kw: Any
    ) -> Any:
        where = dict(group=group, version=version, plural=plural)
        return await self._json("GET", _CUSTOM + "/{plural}", **where, **kw)

    async def list_cluster_custom_object_without_preload_content(
        self, group: str, version: str, plural: str, **kw: Any
    ) -> Any:
        where = dict(group=group, version=version, plural=plural)
        return await self._raw("GET", _CUSTOM + "/{plural}", **where, **kw)

    async def list_namespaced_custom_object_without_preload_content(
        self, group: str, version: str, namespace: str, plural: str, **kw: Any
    ) -> Any:
        where = dict(group=group, version=version, namespace=namespace, plural=plural)
        return await self._raw("GET", _CUSTOM_ALL, **where, **kw)

    async def create_namespaced_custom_object_without_preload_content(
        self, group: str, version: str, namespace: str, plural: str, body: Any, **kw: Any
    ) -> Any:
        where = dict(group=group, version=version, namespace=namespace, plural=plural)
        return await self._raw("POST", _CUSTOM_ALL, body, **where, **kw)

    async def patch_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: Any,
        **kw: Any,
    ) -> Any:  # fmt: skip
        where = dict(group=group, version=version, namespace=namespace, plural=plural, name=name)
        return await self._json("PATCH", _CUSTOM_ONE, body, **where, **kw)

    async def patch_namespaced_custom_object_without_preload_content(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: Any,
        **kw: Any,
    ) -> Any:  # fmt: skip
        where = dict(group=group, version=version, namespace=namespace, plural=plural, name=name)
        return await self._raw("PATCH", _CUSTOM_ONE, body, **where, **kw)

    async def patch_namespaced_custom_object_status(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: Any,
        **kw: Any,
    ) -> Any:  # fmt: skip
        where = dict(group=group, version=version, namespace=namespace, plural=plural, name=name)
        return await self._json("PATCH", _CUSTOM_ONE + "/status", body, **where, **kw)
