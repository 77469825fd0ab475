"""Promotion gates: which measurement is due, what a result means, when a check has passed.

Pure. The shell takes the measurements the plan asks for (`Plan.measure`) and hands their
results back in the next snapshot (`Snapshot.results`, and Jobs for job checks); `gate` records
them into the draft status and says where the gate stands. Decisions (flip, abort, flip back)
only ever use verdicts that were already recorded in the observed status, never one taken in
the same reconcile, so a flip never rests on a verdict that a lost status write could forget.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any, Literal

from greenlight.api import checks as api_checks
from greenlight.api import expression as cel
from greenlight.api import templates as api_templates
from greenlight.engine import actions as act
from greenlight.engine import history, judge, reasons, snapshot
from greenlight.engine.draft import Work

Gate = Literal["passed", "running", "failed", "inconclusive"]
PRE, POST = "prePromotion", "postPromotion"
HANDOVER, SCALE_DOWN = "handover", "scaleDown"
"""The drain gates: checks against a draining revision ($(DRAINING_HASH) is theirs)."""


def step_stage(index: int) -> str:
    return f"step-{index}"


@dataclasses.dataclass(frozen=True)
class GateState:
    state: Gate
    message: str = ""


def variables(w: Work, template_hash: str, revision: int, stage: str = "") -> dict[str, str]:
    ns = w.snap.release.namespace
    live = w.spec.service.name if w.spec.service is not None else ""
    preview = w.spec.preview_service.name if w.spec.preview_service else live
    return {
        "RELEASE": w.name,
        "NAMESPACE": ns,
        "REVISION": str(revision),
        "TEMPLATE_HASH": template_hash,
        "PREVIEW_SERVICE": f"{preview}.{ns}.svc.cluster.local" if preview else "",
        "LIVE_SERVICE": f"{live}.{ns}.svc.cluster.local" if live else "",
        "LIVE_HASH": w.d.live_hash or "",
        "DRAINING_HASH": template_hash if stage in (HANDOVER, SCALE_DOWN) else "",
        "BASELINE_HASH": baseline_hash(w, template_hash, stage),
    }


def baseline_hash(w: Work, template_hash: str, stage: str) -> str:
    """What a compare check judges the candidate against: the live revision, or after a
    blue-green flip (postPromotion) the revision that was live before it."""
    if stage == POST:
        previous = history.undo_target(w.history, template_hash, "")
        return "" if isinstance(previous, str) else previous.template_hash
    return w.d.live_hash or ""


_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(text: str, values: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names are replaced, $$ is a literal $."""

    def one(m: re.Match[str]) -> str:
        if m[0] == "$$":
            return "$"
        return values.get(m[1], m[0])

    return _VAR.sub(one, text)


EXPANDED = (
    "url", "query", "value", "body", "address",
    "baselineQuery", "totalQuery", "baselineTotalQuery",
)  # fmt: skip
"""The fields $(VAR)s are expanded in."""


def expanded(check: api_checks.Check, values: dict[str, str]) -> api_checks.Check:
    """The check with $(VAR)s expanded in URLs, queries, header values, bodies and Job env."""
    body = check.model_dump(by_alias=True, exclude_none=True)

    def walk(node: Any, key: str = "") -> Any:
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, key) for v in node]
        if isinstance(node, str) and key in EXPANDED:
            return expand(node, values)
        return node

    for provider in ("http", "webhook", "prometheus", "job", "compare"):
        if provider in body:
            body[provider] = walk(body[provider])
    return api_checks.Check.model_validate(body)


def job_name(release: str, stage: str, template_hash: str, check: str) -> str:
    digest = hashlib.sha256(f"{stage}/{template_hash}/{check}".encode()).hexdigest()[:10]
    return f"{release}-check-{digest}"


# --- verdicts -------------------------------------------------------------------------------


def _cel_value(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def condition(expression: str, result: Any) -> bool:
    """A CEL condition over `result` (raises ValueError on an evaluation error)."""
    try:
        value = cel.evaluate(expression, {"result": _cel_value(result)})
    except Exception as e:  # the library raises several types for evaluation errors
        raise ValueError(f"{expression!r}: {e}") from None
    if not isinstance(value, bool):
        raise ValueError(f"{expression!r} gave {value!r}, not true or false")
    return value


def verdict(
    check: api_checks.Check, result: snapshot.CheckResult
) -> tuple[api_checks.Verdict, str]:
    """(verdict, shown value) of one measurement."""
    if result.error is not None:
        return "Error", result.error
    value = result.value
    shown = _shorten(value)
    try:
        if check.job is not None:
            return ("Successful" if value == "Succeeded" else "Failed"), shown
        if check.http is not None or check.webhook is not None:
            status = int(value.get("status", 0)) if isinstance(value, dict) else 0
            expected = check.http.expected_status if check.http else []
            ok = status in expected if expected else 200 <= status < 300
            if check.failure_condition and condition(check.failure_condition, value):
                return "Failed", shown
            if not ok:
                return "Failed", shown
            if check.success_condition and not condition(check.success_condition, value):
                return "Failed", shown
            return "Successful", shown
        # prometheus: the conditions decide
        if check.failure_condition and condition(check.failure_condition, value):
            return "Failed", shown
        assert check.success_condition is not None
        if condition(check.success_condition, value):
            return "Successful", shown
        return ("Inconclusive" if check.failure_condition else "Failed"), shown
    except ValueError as e:
        return "Error", f"condition: {e}"


def _shorten(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- the gate -------------------------------------------------------------------------------


def gate(
    w: Work,
    stage: str,
    checks: Sequence[api_checks.Check],
    template_hash: str,
    revision: int,
    skip: bool = False,
) -> GateState:
    """Record new results of `checks` (of `template_hash` at `stage`) into the draft, ask for
    the measurements that are due, and say where the gate stood in the observed status."""
    if not checks:
        return GateState("passed")
    observed = {
        c.name: c
        for c in w.snap.release.status.checks
        if c.stage == stage and c.template_hash == template_hash
    }
    values = variables(w, template_hash, revision, stage)
    resolved_checks, unmade = [], []
    for written in checks:
        entry = _entry(w, stage, template_hash, written.name)
        check, used = resolve(w, written, entry)
        if isinstance(check, str):  # its template went away after `template_error` looked
            unmade.append(f"check {written.name} waits: {check}")
            continue
        resolved_checks.append(check)
        if entry is None:
            delay = api_checks.seconds(check.initial_delay)
            entry = api_checks.CheckStatus(
                name=check.name,
                stage=stage,
                template_hash=template_hash,
                started_at=w.now,
                next_at=w.now + datetime.timedelta(seconds=delay),
                **used,
            )
        if skip and entry.phase in ("Running", "Inconclusive"):
            entry = entry.model_copy(update={"phase": "Skipped", "next_at": None})
        entry = _record(w, check, entry, revision)
        if entry.phase == "Running":
            _ask(w, expanded(check, values), entry, revision)
        _put(w, entry)
    if unmade:
        return GateState("running", "; ".join(unmade))
    return _state(resolved_checks, observed)


def resolve(
    w: Work, check: api_checks.Check, entry: api_checks.CheckStatus | None
) -> tuple[api_checks.Check | str, dict[str, Any]]:
    """A templateRef's check as its template makes it (the one recorded when the check
    started, if it did: a template changed mid-release does not change a running check), and
    what the status records of it; or why it cannot be."""
    ref = check.template_ref
    if ref is None:
        return check, {}
    if entry is not None and entry.resolved is not None:
        return api_checks.Check.model_validate(entry.resolved), {}
    found = w.snap.template(ref.kind, ref.name)
    if found is None or found.spec is None:
        where = "cluster" if ref.kind == api_templates.CLUSTER_KIND else "namespace"
        why = found.error if found is not None else f"not found in the {where}"
        return f"templateRef: {ref.kind} {ref.name}: {why}", {}
    try:
        made = api_templates.resolve(check, found.spec)
    except ValueError as e:
        return str(e), {}
    used = {
        "template": f"{ref.kind}/{ref.name}@{found.generation}",
        "resolved": made.model_dump(by_alias=True, exclude_none=True, mode="json"),
    }
    return made, used


def template_error(w: Work) -> str | None:
    """The first check of the spec whose template cannot make it (missing, an argument
    missing or of the wrong type, a check the place does not allow), named by its field."""
    for path, place, check in w.spec.all_checks():
        if check.template_ref is None:
            continue
        stage = {"prePromotion": PRE, "postPromotion": POST}.get(place)
        running = (w.d.candidate_hash, w.d.live_hash)  # (a new revision's check: made now)
        entry = next(
            (c for c in w.checks if c.name == check.name and c.resolved is not None
             and (stage is None or c.stage == stage) and c.template_hash in running),
            None,
        )  # fmt: skip
        made, _ = resolve(w, check, entry)
        if isinstance(made, str):
            return f"{path}: {made}"
        error = api_checks.placement_error(place, made)
        if error:
            return f"{path}: {check.template_ref.kind} {check.template_ref.name}: {error}"
    return None


def _entry(w: Work, stage: str, template_hash: str, name: str) -> api_checks.CheckStatus | None:
    for c in w.checks:
        if (c.stage, c.template_hash, c.name) == (stage, template_hash, name):
            return c
    return None


def _put(w: Work, entry: api_checks.CheckStatus) -> None:
    key = (entry.stage, entry.template_hash, entry.name)
    w.checks = [c for c in w.checks if (c.stage, c.template_hash, c.name) != key] + [entry]


def _record(
    w: Work, check: api_checks.Check, entry: api_checks.CheckStatus, revision: int
) -> api_checks.CheckStatus:
    if entry.phase != "Running":
        return entry
    seq = entry.taken + entry.errors
    for result in (*w.snap.results, *job_results(w.snap.jobs)):
        if (result.stage, result.name, result.template_hash) != (
            entry.stage,
            entry.name,
            entry.template_hash,
        ) or (check.job is None and result.seq != seq):
            continue  # (a Job has one result: its state, or the API server's refusal)
        if check.job is not None and result.value == "Running":
            break
        entry = _count(w, check, entry, result, revision)
        break
    if check.job is not None and entry.phase == "Running":
        deadline = entry.started_at + datetime.timedelta(
            seconds=api_checks.seconds(check.initial_delay) + check.timeout_seconds
        )
        if w.now >= deadline:
            entry = _finish(
                w, entry, "Failed", f"the Job did not finish in {check.timeout_seconds}s"
            )
        else:
            w.wake_at(deadline)
    return entry


def _count(
    w: Work,
    check: api_checks.Check,
    entry: api_checks.CheckStatus,
    result: snapshot.CheckResult,
    revision: int,
) -> api_checks.CheckStatus:
    judgement = None
    if check.compare is not None and result.error is None:
        judgement = judged(check.compare, result)
        verdict_, shown = judgement.verdict, _summary(judgement)
    else:
        verdict_, shown = verdict(check, result)
    before = entry.measurements[-1].verdict if entry.measurements else None
    counts = {
        "successes": entry.successes + (verdict_ == "Successful"),
        "failures": entry.failures + (verdict_ == "Failed"),
        "inconclusive": entry.inconclusive + (verdict_ == "Inconclusive"),
        "errors": entry.errors + (verdict_ == "Error"),
        "consecutive_errors": entry.consecutive_errors + 1 if verdict_ == "Error" else 0,
    }
    measurement = api_checks.Measurement(at=result.at, verdict=verdict_, value=shown)
    interval = datetime.timedelta(seconds=api_checks.seconds(check.interval))
    entry = entry.model_copy(
        update={
            **counts,
            "measurements": [*entry.measurements, measurement][-api_checks.MAX_MEASUREMENTS :],
            "next_at": result.at + interval,
            **({"judgement": judgement} if judgement is not None else {}),
        }
    )
    if verdict_ != before:
        w.event(
            reasons.CHECK_VERDICT[verdict_],
            f"check {check.name} ({entry.stage}, revision {revision}): {verdict_}: {shown}",
            warning=verdict_ in ("Failed", "Error"),
        )
    if entry.failures > check.failure_limit:
        return _finish(w, entry, "Failed", f"{entry.failures} failed measurement(s): {shown}")
    if entry.consecutive_errors > check.consecutive_error_limit:
        return _finish(w, entry, "Failed", f"{entry.consecutive_errors} errors in a row: {shown}")
    if entry.inconclusive > check.inconclusive_limit:
        return _finish(w, entry, "Inconclusive", f"{entry.inconclusive} inconclusive: {shown}")
    if entry.successes >= (1 if check.job is not None else check.count):
        return _finish(w, entry, "Passed", f"{entry.successes}/{entry.taken} passed")
    return entry


def _finish(
    w: Work, entry: api_checks.CheckStatus, phase: api_checks.CheckPhase, message: str
) -> api_checks.CheckStatus:
    w.event(
        reasons.CHECK_PHASE[phase],
        f"check {entry.name} ({entry.stage}): {phase}: {message}",
        warning=phase in ("Failed", "Inconclusive"),
    )
    return entry.model_copy(update={"phase": phase, "message": message, "next_at": None})


def _ask(w: Work, check: api_checks.Check, entry: api_checks.CheckStatus, revision: int) -> None:
    """A measurement (or the Job) that is due now; otherwise wake up when it is."""
    if check.job is not None:
        name = job_name(w.name, entry.stage, entry.template_hash, entry.name)
        if entry.next_at is not None and w.now < entry.next_at:
            w.wake_at(entry.next_at)
            return
        if not any(j.name == name for j in w.snap.jobs):
            w.jobs.append(
                act.CreateJob(
                    name=name,
                    check=entry.name,
                    stage=entry.stage,
                    template_hash=entry.template_hash,
                    spec=check.job.model_dump(by_alias=True, exclude_none=True),
                )
            )
        return
    if entry.next_at is not None and w.now < entry.next_at:
        w.wake_at(entry.next_at)
        return
    w.measurements.append(
        act.Measure(
            stage=entry.stage,
            name=entry.name,
            template_hash=entry.template_hash,
            seq=entry.taken + entry.errors,
            check=check,
            release=_description(w, entry.template_hash, revision),
            windows=windows(check, entry.started_at, w.now),
        )
    )


Window = tuple[datetime.datetime, datetime.datetime]


def windows(
    check: api_checks.Check, started: datetime.datetime, now: datetime.datetime
) -> tuple[Window, ...]:
    """The time windows of a measurement's range queries: a prometheus range query's; a
    compare check's (the candidate's, the baseline's): the same window ending now, or with
    baseline: before the candidate's since the check started and as long a one before that."""
    if check.prometheus is not None and check.prometheus.range is not None:
        return (
            (now - datetime.timedelta(seconds=api_checks.seconds(check.prometheus.range)), now),
        )
    if check.compare is None:
        return ()
    span = datetime.timedelta(seconds=api_checks.seconds(check.compare.range))
    if check.compare.baseline == "concurrent":
        return ((now - span, now), (now - span, now))
    begin = max(started, now - span)
    length = max(now - begin, datetime.timedelta(seconds=api_checks.seconds(check.compare.step)))
    return ((begin, begin + length), (started - length, started))


# --- judgement ------------------------------------------------------------------------------


def judged(spec: api_checks.CompareCheck, result: snapshot.CheckResult) -> api_checks.Judgement:
    """A compare check's measurement (each metric's samples of both sides, as the shell read
    them) judged: every number, and the verdict by the weighted score."""
    samples = result.value if isinstance(result.value, dict) else {}
    judged_: list[tuple[api_checks.CompareMetric, judge.MetricResult]] = []
    for metric in spec.metrics:
        got = samples.get(metric.name) or {}
        candidate, baseline = got.get("candidate") or [], got.get("baseline") or []
        if metric.test == "proportion":
            c_events, c_total = [*candidate, 0.0, 0.0][:2]
            b_events, b_total = [*baseline, 0.0, 0.0][:2]
            r = judge.proportion(
                c_events, c_total, b_events, b_total, direction=metric.direction,
                tolerance=metric.tolerance, confidence=spec.confidence,
                min_samples=metric.min_samples or 100,
            )  # fmt: skip
        else:
            r = judge.continuous(
                candidate, baseline, direction=metric.direction, tolerance=metric.tolerance,
                confidence=spec.confidence, min_samples=metric.min_samples or 20,
                outliers=spec.outliers == "remove",
            )  # fmt: skip
        judged_.append((metric, r))
    weights = spec.weights()
    verdict_, score = judge.score(
        [(r, weight) for (_, r), weight in zip(judged_, weights, strict=True)],
        pass_score=spec.pass_score,
        marginal_score=spec.marginal_score,
    )
    metrics = [
        api_checks.MetricJudgement(name=m.name, weight=weight, **dataclasses.asdict(r))
        for (m, r), weight in zip(judged_, weights, strict=True)
    ]
    return api_checks.Judgement(at=result.at, verdict=verdict_, score=score, metrics=metrics)


def _summary(j: api_checks.Judgement) -> str:
    """The measurement's shown value: the score and each metric that did not pass (and how)."""
    off = [m for m in j.metrics if m.verdict != "Pass"]
    detail = "; ".join(f"{m.name} {m.verdict.lower()}: {m.message}" for m in off)
    return _shorten(f"score {j.score:g}" + (f"; {detail}" if detail else ""))


def _description(w: Work, template_hash: str, revision: int) -> dict[str, Any]:
    """What a webhook is told (Flagger's webhook payload, in Greenlight's words)."""
    entry = w.entry(template_hash)
    return {
        "name": w.name,
        "namespace": w.snap.release.namespace,
        "phase": w.snap.release.status.phase,
        "candidate": {"revision": revision, "templateHash": template_hash,
                      "images": entry.images if entry else []},
        "live": {"revision": w.d.live_revision, "templateHash": w.d.live_hash},
    }  # fmt: skip


def _state(
    checks: Sequence[api_checks.Check], observed: dict[str, api_checks.CheckStatus]
) -> GateState:
    phases = {c.name: observed[c.name].phase if c.name in observed else "Running" for c in checks}
    failed = [n for n, p in phases.items() if p == "Failed"]
    if failed:
        entry = observed[failed[0]]
        return GateState("failed", f"check {failed[0]} failed: {entry.message}")
    inconclusive = [n for n, p in phases.items() if p == "Inconclusive"]
    if inconclusive:
        entry = observed[inconclusive[0]]
        return GateState("inconclusive", f"check {inconclusive[0]} inconclusive: {entry.message}")
    running = [n for n, p in phases.items() if p == "Running"]
    if running:
        progress = ", ".join(
            f"{n} {observed[n].successes if n in observed else 0}/"
            f"{next(c for c in checks if c.name == n).count}"
            for n in running
        )
        return GateState("running", f"checks running: {progress}")
    return GateState("passed")


def job_result(job: snapshot.JobView) -> str:
    return "Succeeded" if job.succeeded else "Failed" if job.failed else "Running"


def job_results(jobs: Sequence[snapshot.JobView]) -> tuple[snapshot.CheckResult, ...]:
    """Finished (or running) check Jobs as results of their check's measurement 0."""
    return tuple(
        snapshot.CheckResult(
            stage=j.stage,
            name=j.check,
            template_hash=j.template_hash,
            seq=0,
            at=j.finished_at or j.created_at,
            value=job_result(j),
        )
        for j in jobs
    )


def keep(w: Work, relevant: set[str]) -> None:
    """Forget the checks of revisions that are neither live nor in flight."""
    w.checks = [c for c in w.checks if c.template_hash in relevant]
