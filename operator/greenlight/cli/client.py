"""The plugin's Kubernetes client: Releases (and ReleaseGroups) of one namespace of the current
kubeconfig, read, patched and watched (synchronous, threads for watches: this is a CLI)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, cast

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from greenlight.api import group as api_group
from greenlight.api import release as api
from greenlight.cli.console import fail

# The client's config loaders and its Watch are untyped: typed once, here.
_load_kube_config = cast(Callable[..., None], config.load_kube_config)
_list_contexts = cast(
    Callable[[], tuple[list[dict[str, Any]], dict[str, Any]]], config.list_kube_config_contexts
)
_Watch = cast(Callable[[], Any], watch.Watch)


def new_watch() -> Any:
    """A kubernetes watch (`stream(list_function, *args, **kwargs)`, `stop()`)."""
    return _Watch()


class Releases:
    """Releases (or, with `plural` releasegroups, groups) in one namespace."""

    def __init__(
        self, namespace: str | None, context: str | None, plural: str = api.PLURAL
    ) -> None:
        self.plural = plural
        try:
            _load_kube_config(context=context)
            contexts, current = _list_contexts()
        except (config.ConfigException, OSError) as e:
            fail(f"no usable kubeconfig: {e}")
        chosen = next((c for c in contexts if c["name"] == context), current)
        self.ns = namespace or chosen["context"].get("namespace") or "default"
        self.custom = client.CustomObjectsApi()
        self.apps = client.AppsV1Api()

    def get(self, name: str) -> dict[str, Any]:
        try:
            obj = self.custom.get_namespaced_custom_object(
                api.GROUP, api.VERSION, self.ns, self.plural, name
            )
        except ApiException as e:
            fail(_api_error(e, name, self.ns))
        return cast(dict[str, Any], obj)

    def get_or_none(self, name: str) -> dict[str, Any] | None:
        """The object, or None when there is none (a group's member not created yet)."""
        try:
            found = self.custom.get_namespaced_custom_object(
                api.GROUP, api.VERSION, self.ns, self.plural, name
            )
        except ApiException as e:
            if e.status == 404:
                return None
            fail(f"release {self.ns}/{name}: {e.status} {e.reason}")
        return cast(dict[str, Any], found)

    def patch(self, name: str, body: dict[str, Any]) -> None:
        try:
            self.custom.patch_namespaced_custom_object(
                api.GROUP, api.VERSION, self.ns, self.plural, name, body
            )
        except ApiException as e:
            fail(_api_error(e, name, self.ns))


def _api_error(e: ApiException, name: str, ns: str) -> str:
    if e.status == 404:
        return f'release "{name}" not found in namespace "{ns}"'
    return f"release {ns}/{name}: {e.status} {e.reason}"


def group_name(name: str) -> str | None:
    """`group/shop` names a ReleaseGroup (its name); anything else a Release (None)."""
    for prefix in ("group/", "releasegroup/", "releasegroups/"):
        if name.startswith(prefix):
            return name.removeprefix(prefix)
    return None


def target(name: str, namespace: str | None, context: str | None) -> tuple[Releases, str]:
    """The client for what NAME names (a Release, or group/NAME a ReleaseGroup), and its name."""
    group = group_name(name)
    plural = api.PLURAL if group is None else api_group.PLURAL
    return Releases(namespace, context, plural), group or name


Event = tuple[str, str, dict[str, Any]]
"""(plural, watch event type, object); ("error", message, {}) when a watch gives up."""


class Watches:
    """Watches of custom objects, each in a thread handing every change to `sink`, reopened
    as they end (server timeout; 410 Gone: then from the current state) until `close()`."""

    def __init__(self, releases: Releases, sink: Callable[[Event], object] | None = None) -> None:
        self.releases = releases
        self.events: queue.Queue[Event] = queue.Queue()
        self._put = sink or self.events.put
        """Where changes go (called in the watch's thread); default: the `events` queue."""
        self._closed = threading.Event()
        self._open: set[Any] = set()  # the watches (new_watch) reading now
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self, plural: str, **selector: str) -> None:
        thread = threading.Thread(target=self._follow, args=(plural,), kwargs=selector)
        thread.daemon = True
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        """Stop every watch (its socket is shut, so a blocked read returns) and wait for it:
        a thread left reading TLS while the interpreter exits can abort the process."""
        self._closed.set()
        with self._lock:
            for stream in self._open:
                stream.stop()
        for thread in self._threads:
            thread.join(timeout=5)

    def _follow(self, plural: str, **selector: str) -> None:
        version: str | None = None
        while not self._closed.is_set():
            stream = new_watch()
            with self._lock:
                if self._closed.is_set():
                    return
                self._open.add(stream)
            try:
                for event in stream.stream(
                    self.releases.custom.list_namespaced_custom_object,
                    api.GROUP,
                    api.VERSION,
                    self.releases.ns,
                    plural,
                    resource_version=version,
                    timeout_seconds=300,
                    allow_watch_bookmarks=True,
                    **selector,
                ):
                    if event is None:  # the client yields None for a blank or broken line
                        continue
                    obj = event.get("raw_object") or event.get("object") or {}
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self._put((plural, event["type"], obj))
            except ApiException as e:
                if e.status == 410:
                    version = None
                    continue
                if not self._closed.is_set():
                    self._put(("error", f"watch {plural}: {e.status} {e.reason}", {}))
                return
            except (urllib3.exceptions.HTTPError, OSError, ValueError):
                # The API server went away, or close() shut the socket: reconnect, or stop.
                self._closed.wait(1)
            finally:
                with self._lock:
                    self._open.discard(stream)
