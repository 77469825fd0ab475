"""Release groups, state in / actions out: the seed's django + fastapi pair flipped as one."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenlight.api import group as api_group
from greenlight.api import release as api
from greenlight.engine import group, naming

from .world import World, hash_of, spec

MEMBERS = ("django", "fastapi")


def member_spec(name: str, image: str, **kw: Any) -> api.ReleaseSpec:
    body = spec(image, **kw).model_dump(by_alias=True, exclude_none=True)
    body["service"]["name"] = name
    body["previewService"] = {"name": f"{name}-preview"}
    return api.ReleaseSpec.model_validate(body)


@dataclasses.dataclass
class Shop:
    """Two member Releases and their group, each planned the way the operator would."""

    worlds: dict[str, World]
    status: api_group.GroupStatus = dataclasses.field(default_factory=api_group.GroupStatus)
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    spec: api_group.GroupSpec = dataclasses.field(
        default_factory=lambda: api_group.GroupSpec(members=list(MEMBERS), settle_seconds=5)
    )
    last: group.GroupPlan | None = None
    crash_after_first_flip: bool = False

    @classmethod
    def released(cls) -> Shop:
        worlds = {}
        for name in MEMBERS:
            w = World(member_spec(name, f"{name}:1"), name=name, group="shop")
            worlds[name] = w.go_live()
        shop = cls(worlds)
        shop.plan()
        return shop

    def tick(self, seconds: float) -> None:
        for w in self.worlds.values():
            w.tick(seconds)

    def snapshot(self) -> group.GroupSnapshot:
        now = next(iter(self.worlds.values())).now
        members = tuple(
            group.Member(
                name=name,
                release=w.snapshot().release,
                deployments=tuple(w.deployments.values()),
                live_service=w.services.get(w.spec.service.name) if w.spec.service else None,
            )
            for name, w in self.worlds.items()
        )
        view = group.GroupView(
            "shop", "ns", "uid-g", 1, self.spec, self.status, dict(self.annotations)
        )
        return group.GroupSnapshot(view, members, now)

    def plan(self) -> group.GroupPlan:
        p = self._plan()
        if p.requeue_after == 0 and self.last is p:  # its own status write wakes it again
            p = self._plan()
        return p

    def _plan(self) -> group.GroupPlan:
        p = group.plan_group(self.snapshot())
        for a in p.member_commands:
            self.worlds[a.release].annotations[a.key] = a.value
        for k in p.cleared:
            self.annotations.pop(k, None)
        self.status, self.last = p.status, p
        return p

    def step(self) -> None:
        """Each member reconciles (told its revision in the group's last entry), the
        Deployments catch up, the group decides. `crash_after_first_flip`: the operator is
        killed right after the first member's flip."""
        entry = self.status.history[-1].revisions if self.status.history else {}
        for name, w in self.worlds.items():
            w.group_flip_to = entry.get(name)
            before = w.live_hash()
            w.reconcile()
            if self.crash_after_first_flip and w.live_hash() != before:
                self.crash_after_first_flip = False
                return  # killed: the other members and the group do not reconcile now
        self.plan()

    def live(self) -> dict[str, int | None]:
        return {n: w.status.live_revision for n, w in self.worlds.items()}

    def selected(self, name: str) -> str | None:
        w = self.worlds[name]
        return w.services[w.spec.service.name].selector.get(naming.LABEL_HASH)

    def release(self, name: str, image: str, **kw: Any) -> None:
        self.worlds[name].set_spec(member_spec(name, image, **kw))


def test_neither_flips_until_both_are_ready_then_both_flip_in_one_plan() -> None:
    shop = Shop.released()
    assert shop.status.phase == "Healthy" and shop.status.history[0].revisions == {
        "django": 1, "fastapi": 1,
    }  # fmt: skip
    shop.release("django", "django:2")
    shop.release("fastapi", "fastapi:2")
    shop.step()
    shop.worlds["django"].settle()  # django is fast
    shop.tick(10)
    for _ in range(3):
        shop.step()
    assert shop.live() == {"django": 1, "fastapi": 1}, "fastapi is not ready: nobody flips"
    assert shop.worlds["django"].status.conditions[1].reason == group.WAITING
    assert shop.status.waiting_for == ["fastapi"]
    shop.worlds["fastapi"].settle()
    shop.step()  # fastapi says it is ready: the group records the flip of both
    assert shop.status.history[-1].revisions == {"django": 2, "fastapi": 2}
    assert shop.live() == {"django": 1, "fastapi": 1}, "recorded first, flipped after"
    shop.step()
    assert shop.live() == {"django": 2, "fastapi": 2}
    assert shop.status.history[-1].revisions == {"django": 2, "fastapi": 2}
    assert "Promoted" in shop.worlds["django"].events()
    assert shop.status.phase == "Healthy" and shop.status.last_flip_spread_ms == 0.0
    assert [a.reason for a in shop.last.events] == ["GroupFlipped"]


def test_a_worker_member_hands_over_in_the_same_flip_as_the_web_member() -> None:
    """django serves behind its Service; fastapi is a queue worker (no Service): the group
    flips both, the worker by its pods' roles."""
    web = World(member_spec("django", "django:1"), name="django", group="shop").go_live()
    worker = World(spec("fastapi:1", worker=True), name="fastapi", group="shop").go_live()
    shop = Shop({"django": web, "fastapi": worker})
    shop.plan()
    old = worker.live_hash()
    shop.release("django", "django:2")
    worker.set_spec(spec("fastapi:2", worker=True))
    shop.step()
    web.settle()
    shop.step()
    assert shop.live() == {"django": 1, "fastapi": 1}, "the worker is not ready: nobody flips"
    assert worker.pod_roles().get(old) == {"live"}
    worker.settle()
    shop.tick(10)  # (the group's settle window)
    for _ in range(3):
        shop.step()
    assert shop.live() == {"django": 2, "fastapi": 2}
    assert worker.pod_roles()[old] == {"draining"}
    assert worker.pod_roles()[hash_of(worker.spec)] == {"live"}
    assert shop.status.phase == "Healthy"


def test_first_revisions_gated_by_first_release_checks_go_live_together() -> None:
    """firstReleaseChecks: no member serves yet, so the group has no starting entry; it records
    the first flip of both once both are ready."""
    worlds = {}
    for name in MEMBERS:
        body = member_spec(name, f"{name}:1").model_dump(by_alias=True, exclude_none=True)
        body["strategy"]["blueGreen"]["firstReleaseChecks"] = True
        spec_ = api.ReleaseSpec.model_validate(body)
        worlds[name] = World(spec_, name=name, group="shop")
    shop = Shop(worlds)
    shop.step()
    shop.worlds["django"].settle()
    shop.tick(10)
    shop.step()
    assert shop.live() == {"django": None, "fastapi": None}, "fastapi is not ready"
    shop.worlds["fastapi"].settle()
    for _ in range(2):
        shop.step()
    assert shop.live() == {"django": 1, "fastapi": 1}
    assert shop.status.history[-1].revisions == {"django": 1, "fastapi": 1}
    assert shop.status.phase == "Healthy"


def test_a_member_scaled_down_mid_release_flips_at_its_live_slot_size() -> None:
    """An HPA lowers django's replicas mid-release: its candidate stays at the live slot's 3,
    the group sees it ready at that size (not at spec.replicas) and flips both."""
    shop = Shop.released()
    shop.release("django", "django:2")
    shop.release("fastapi", "fastapi:2")
    shop.step()
    shop.release("django", "django:2", replicas=1)
    shop.step()
    for w in shop.worlds.values():
        w.settle()
    shop.tick(10)  # the settle window
    for _ in range(3):
        shop.step()
    assert shop.live() == {"django": 2, "fastapi": 2}
    django = shop.worlds["django"]
    assert django.by_hash(django.status.live_hash or "").available_replicas == 3
    django.reconcile()
    assert django.by_hash(django.status.live_hash or "").spec_replicas == 1, "then it settles"


def test_one_member_never_ready_aborts_both_and_live_is_untouched() -> None:
    shop = Shop.released()
    v1 = {n: shop.selected(n) for n in MEMBERS}
    shop.release("django", "django:2", deadline=60)
    shop.release("fastapi", "fastapi:2", deadline=600)
    shop.step()
    shop.worlds["fastapi"].settle()
    for _ in range(3):
        shop.tick(30)
        shop.step()
    shop.step()
    assert {n: shop.selected(n) for n in MEMBERS} == v1
    assert shop.worlds["django"].status.history[-1].outcome == "Aborted"
    assert shop.worlds["fastapi"].status.history[-1].outcome == "Aborted", "aborted with it"
    assert shop.status.phase == "Degraded"


def test_undo_takes_the_whole_group_back() -> None:
    shop = Shop.released()
    for name in MEMBERS:
        shop.release(name, f"{name}:2")
    for _ in range(4):
        shop.step()
        for w in shop.worlds.values():
            w.settle()
        shop.tick(10)
    assert shop.live() == {"django": 2, "fastapi": 2}
    first = {n: shop.worlds[n].status.history[0].template_hash for n in MEMBERS}
    shop.annotations[naming.COMMAND_UNDO] = ""
    shop.plan()
    assert {n: w.annotations.get(naming.COMMAND_UNDO) for n, w in shop.worlds.items()} == {
        "django": "1", "fastapi": "1",
    }  # fmt: skip
    for _ in range(5):
        shop.step()
        for w in shop.worlds.values():
            w.settle()
        shop.tick(10)
    assert {n: shop.selected(n) for n in MEMBERS} == first, "both back on their first templates"


def test_only_one_member_changes() -> None:
    shop = Shop.released()
    shop.release("fastapi", "fastapi:2")
    for _ in range(3):
        shop.step()
        shop.worlds["fastapi"].settle()
        shop.tick(10)
    shop.step()
    assert shop.live() == {"django": 1, "fastapi": 2}
    assert shop.status.history[-1].revisions == {"django": 1, "fastapi": 2}


def test_the_settle_window_waits_for_a_late_member() -> None:
    shop = Shop.released()
    shop.release("django", "django:2")
    shop.step()
    shop.worlds["django"].settle()
    shop.step()
    shop.tick(2)
    shop.release("fastapi", "fastapi:2")  # the next file of the same `kubectl apply -f dir/`
    shop.step()
    assert shop.live() == {"django": 1, "fastapi": 1}
    shop.worlds["fastapi"].settle()
    shop.step()
    shop.step()
    assert shop.last is not None and shop.last.requeue_after is not None, "settling"
    shop.tick(5)
    shop.step()
    shop.step()
    assert shop.live() == {"django": 2, "fastapi": 2}


def test_killed_between_two_flips_finishes_forward_on_restart() -> None:
    shop = Shop.released()
    for name in MEMBERS:
        shop.release(name, f"{name}:2")
    shop.step()
    for w in shop.worlds.values():
        w.settle()
    shop.tick(10)
    shop.step()  # both say they are ready; the group records the flip
    shop.crash_after_first_flip = True
    shop.step()
    moved = [n for n in MEMBERS if shop.selected(n) == hash_of(shop.worlds[n].spec)]
    assert len(moved) == 1, "half flipped"
    shop.step()  # restart: the members and the group reconcile from what they see
    shop.step()
    assert all(shop.selected(n) == hash_of(shop.worlds[n].spec) for n in MEMBERS)
    assert shop.live() == {"django": 2, "fastapi": 2}


def test_a_group_that_cannot_be_acted_on_touches_nothing() -> None:
    shop = Shop.released()
    shop.spec = api_group.GroupSpec(members=["django", "fastapi", "celery"])
    snap = shop.snapshot()
    missing = dataclasses.replace(snap, members=(*snap.members, group.Member("celery", None)))
    p = group.plan_group(missing)
    assert (
        p.status.phase == "Degraded"
        and "spec.members[2]: Release celery not found" in p.status.message
    )
    assert p.member_commands == () and p.cleared == ()
    twice = dataclasses.replace(
        snap, members=(dataclasses.replace(snap.members[0], other_groups=("web",)), snap.members[1])
    )
    p = group.plan_group(twice)
    assert "spec.members[0]: Release django is also in group web" in p.status.message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["release", "settle", "tick", "undo", "abort", "crash"]),
            st.sampled_from(MEMBERS),
        ),
        max_size=25,
    )
)
def test_group_invariants(ops: list[tuple[str, str]]) -> None:
    shop = Shop.released()
    images = {n: 1 for n in MEMBERS}
    for op, name in ops:
        if op == "release":
            images[name] += 1
            shop.release(name, f"{name}:{images[name]}")
        elif op == "settle":
            shop.worlds[name].settle()
        elif op == "tick":
            shop.tick(7)
        elif op == "undo":
            shop.annotations[naming.COMMAND_UNDO] = ""
        elif op == "abort":
            shop.annotations[naming.COMMAND_ABORT] = "true"
        elif op == "crash":
            shop.crash_after_first_flip = True
        before = shop.status.history[-1].revisions if shop.status.history else None
        shop.step()
        entries = [e.revisions for e in shop.status.history[-2:]]
        if before is not None and before not in entries:
            entries.append(before)
        for n, w in shop.worlds.items():
            live = w.status.live_revision
            # no member is live on a revision outside the current or previous group entries
            assert any(e.get(n) == live for e in entries), (n, live, entries)
        in_flight = [w for w in shop.worlds.values() if w.status.candidate_hash is not None]
        if not in_flight and shop.status.phase == "Healthy":
            assert shop.live() == shop.status.history[-1].revisions


def _ready_to_flip_together(shop: Shop) -> None:
    for name in MEMBERS:
        shop.release(name, f"{name}:2")
    shop.step()
    for w in shop.worlds.values():
        w.settle()
    shop.tick(10)  # the settle window
    for w in shop.worlds.values():
        w.reconcile()  # both say they are ready; the group has not seen it yet


def test_a_member_flipped_by_its_group_starts_its_post_promotion_checks() -> None:
    """Post-promotion checks run whichever path moved the live Service: a group flip too."""
    post = [{"name": "smoke", "http": {"url": "http://$(PREVIEW_SERVICE)/"}}]
    shop = Shop.released()
    for name in MEMBERS:
        body = member_spec(name, f"{name}:2").model_dump(by_alias=True, exclude_none=True)
        body["strategy"]["blueGreen"]["postPromotion"] = post
        shop.worlds[name].set_spec(api.ReleaseSpec.model_validate(body))
    shop.step()
    for w in shop.worlds.values():
        w.settle()
    shop.tick(10)
    for _ in range(4):
        shop.step()
    assert shop.live() == {"django": 2, "fastapi": 2}
    for name, w in shop.worlds.items():
        live = w.status.live_hash
        post_checks = [c for c in w.status.checks if c.stage == "postPromotion"]
        assert [(c.template_hash, c.phase) for c in post_checks] == [(live, "Running")], name
        assert w.status.phase == "Progressing", "live, its post-promotion checks running"
        assert w.by_hash(w.status.history[0].template_hash).spec_replicas == 3, "old slot warm"


def test_a_group_never_flips_a_member_to_a_candidate_its_spec_replaced() -> None:
    """django's spec moves on to django:3 while django:2 waits for the group: the group must
    not put django:2 live (it is no longer what the spec says), only django:3 once ready."""
    shop = Shop.released()
    _ready_to_flip_together(shop)
    stale = shop.worlds["django"].status.candidate_hash
    assert stale is not None
    shop.release("django", "django:3")  # django's own reconcile has not seen it yet
    for _ in range(3):
        shop.plan()  # the group decides on what it observes
        shop.worlds["fastapi"].reconcile()
    assert shop.selected("django") != stale, "never live on the replaced candidate"
    assert all(e.revisions.get("django") != 2 for e in shop.status.history)
    for _ in range(4):
        shop.step()
        for w in shop.worlds.values():
            w.settle()
        shop.tick(10)
    assert shop.selected("django") == hash_of(shop.worlds["django"].spec)
    assert all(e.template_hash != stale or e.outcome != "Live" for e in
               shop.worlds["django"].status.history)  # fmt: skip
