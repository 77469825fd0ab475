"""Pod roles: which role each revision's pods carry (`greenlight.dev/role`), and the label
writes that bring the observed pods there.

- `live`: the live revision; while a worker's `handover` is under way (the candidate waits for
  the live revision to drain) it is `draining` already, and nothing is live.
- `candidate`: the revision in flight, and any revision that was never live (aborted or
  superseded) while it still has pods.
- `draining`: a revision that was live and is not any more (Retired, RolledBack in its history
  entry), until it is scaled down or an undo makes it live again.

Set on the pods (a pod template is never changed for it, which would replace the pods): every
pod is born `candidate` (its Deployment's template says so from the start: the role that acts on
nothing, so a pod born into a live or draining revision does nothing it should not until it is
labelled), and one whose role is not its revision's is labelled when it is seen. Apps read the
label through a Downward API volume, which the kubelet updates in place.
"""

from __future__ import annotations

from greenlight.engine import actions as act
from greenlight.engine.draft import Work
from greenlight.engine.snapshot import Role


def wanted(w: Work) -> dict[str, Role]:
    """The role of each revision that has a Deployment, as the draft now decides."""
    out: dict[str, Role] = {}
    handing_over = w.d.candidate is not None and w.d.candidate.handover_since is not None
    for d in w.snap.deployments:
        h = d.template_hash
        if h == w.d.live_hash:
            out[h] = "draining" if handing_over else "live"
        elif h == w.d.candidate_hash:
            out[h] = "candidate"
        else:
            entry = w.entry(h)
            retired = entry is not None and entry.outcome in ("Retired", "RolledBack")
            out[h] = "draining" if retired else "candidate"
    return out


def label(w: Work) -> None:
    """A SetPodRole for each pod whose role is not its revision's (the shell orders them:
    `live` before `draining`, both once the Services have moved)."""
    roles = wanted(w)
    for pod in w.snap.pods:
        role = roles.get(pod.template_hash)
        if role is not None and pod.role != role:
            w.do(act.SetPodRole(pod.name, role))
