"""The operator's cost of one status write's answer and its watch echo, with no cluster.

The shell indexes a status write's answer at once (`Feeds.written`), then the same version
comes back as a watch event (`Feeds.release`). Timed: both, for 1,000 writes of a Healthy
Release with two revisions in its history, in seven rounds; the median round, per pair.

    .venv/bin/python bench/echo.py
    PYTHONPATH=<another tree>/operator .venv/bin/python bench/echo.py   # that tree's operator
"""

from __future__ import annotations

import copy
import statistics
import time
from typing import Any, cast

from greenlight import handlers
from greenlight.kube import reconcile
from greenlight.kube.workqueue import WorkQueue

NOW = "2026-12-06T08:00:00Z"
RELEASE: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "ns", "uid": "u-1", "generation": 2},
    "spec": {
        "replicas": 2,
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "web", "image": "app:2"}]}},
        "healthCheck": {"httpGet": {"path": "/healthz", "port": 8080}},
        "service": {"name": "web", "ports": [{"port": 80, "targetPort": 8080}]},
    },
    "status": {
        "observedGeneration": 2, "phase": "Healthy", "liveHash": "aaa", "liveRevision": 2,
        "message": "revision 2 is live: 2/2 pods available",
        "conditions": [{"type": t, "status": "True", "reason": "Live", "lastTransitionTime": NOW,
                        "message": "revision 2 is live", "observedGeneration": 2}
                       for t in ("Available", "Ready", "Progressing")],
        "history": [{"revision": r, "templateHash": h, "image": f"app:{r}", "phase": p,
                     "createdAt": NOW, "liveAt": NOW}
                    for r, h, p in ((1, "bbb", "Superseded"), (2, "aaa", "Live"))],
    },
}  # fmt: skip


async def _nothing(key: Any) -> None:
    pass


def main(rounds: int = 7, writes: int = 1000) -> None:
    feeds = handlers.Feeds(reconcile.Reconciler(cast(Any, None)), WorkQueue(_nothing), ["ns"])
    per_pair = []
    for n in range(rounds):
        bodies = []
        for i in range(writes):
            body = copy.deepcopy(RELEASE)
            body["metadata"]["resourceVersion"] = str(1000 + n * writes + i)
            bodies.append(body)
        start = time.perf_counter()
        for body in bodies:
            feeds.written(body)
            feeds.release("MODIFIED", body)
            while feeds.queue._pop() is not None:
                pass
        per_pair.append((time.perf_counter() - start) / writes * 1e6)
    print(
        f"a status write's answer and its echo: median {statistics.median(per_pair):.0f} µs"
        f" ({', '.join(f'{p:.0f}' for p in per_pair)})"
    )


if __name__ == "__main__":
    main()
