"""`kubectl greenlight dashboard` in a real headless Chromium against the local cluster: the page
follows a flip as it happens (no reload), and its Undo button flips the live Service back.

GREENLIGHT_SCREENSHOTS=docs/img also writes the screenshots the README shows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from greenlight.engine import naming
from tests.e2e.browser import browser_fixture  # noqa: F401
from tests.e2e.conftest import _kubectl_binary
from tests.e2e.servers import MetricsTarget, Prometheus
from tests.e2e.support import Releases, release_manifest, with_image
from tests.e2e.test_groups import pair
from tests.e2e.test_plugin import greenlight, plugin_env

pytestmark = pytest.mark.usefixtures("operator")

WEB = 'section[data-release="web"]'


@pytest.fixture
def dashboard(releases: Releases) -> Iterator[str]:
    """`kubectl greenlight dashboard -n <ns> --port 0` running; its URL."""
    proc = subprocess.Popen(
        [_kubectl_binary(), "greenlight", "dashboard", "-n", releases.ns, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=plugin_env(releases),
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    try:
        assert "http://127.0.0.1:" in first, first + proc.stdout.read()
        yield first[first.index("http://") :].split()[0]
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, rest
    assert "Traceback" not in rest, rest


def text(driver: Any, css: str) -> str:
    """The element's text, read in one step (a card re-rendered meanwhile is never stale)."""
    script = "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''"
    return str(driver.execute_script(script, css)).strip()


def click(driver: Any, css: str) -> None:
    """A real click on the element, found again if a re-render replaced it meanwhile."""
    from selenium.common.exceptions import StaleElementReferenceException

    def clicked(d: Any) -> bool:
        try:
            d.find_element("css selector", css).click()
        except StaleElementReferenceException:
            return False
        return True

    until(driver, clicked, 10, f"a click on {css}")


def until(driver: Any, condition: Any, timeout: float, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message=what)


def screenshot(driver: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert driver.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if target := os.environ.get("GREENLIGHT_SCREENSHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_page_follows_a_flip_live_and_undo_flips_back(
    releases: Releases,
    dashboard: str,
    browser: Any,
    tmp_path: Path,
) -> None:
    manifest = release_manifest("web", "example/web:1")
    releases.apply(manifest)
    api = release_manifest("api", "example/api:1", replicas=2, blue_green={"autoPromote": False})
    releases.apply(api)
    steps = [{"setWeight": 50}, {"pause": {}}]
    worker = release_manifest("worker", "example/worker:1", replicas=4, rolling={"steps": steps})
    releases.apply(worker)
    releases.wait_phase("web", "Healthy", liveRevision=1)
    releases.wait_phase("api", "Healthy", liveRevision=1)
    releases.wait_phase("worker", "Healthy", liveRevision=1)
    first = releases.selector("web")[naming.LABEL_HASH]

    browser.get(dashboard)
    live, candidate = f"{WEB} .slot.live .revision", f"{WEB} .slot.candidate .revision"
    until(browser, lambda d: text(d, live) == "revision 1 (blue)", 30, "revision 1 shown live")
    assert text(browser, "#connection") == "live"
    browser.execute_script("window.sameDocument = true")

    # Refused commands: disabled buttons say why, in the CLI's words; the server refuses too.
    promote = browser.execute_script(
        "const b = document.querySelector(arguments[0]); return [b.disabled, b.title]",
        f'{WEB} button[data-command="promote"]',
    )
    refused = greenlight(releases, "promote", "web")
    assert refused.returncode == 1
    assert promote[0] is True and promote[1] and promote[1] in refused.stderr, promote
    code, answer = post(f"{dashboard}api/releases/web/promote", {})
    assert code == 409 and answer["error"] in refused.stderr, answer

    releases.apply(with_image(api, "example/api:2"))
    releases.apply(with_image(worker, "example/worker:2"))
    steps_shown = 'section[data-release="worker"] .steps'
    until(browser, lambda d: "weight 50%" in text(d, steps_shown), 30, "a rolling step shown")
    releases.apply(with_image(manifest, "example/web:2", ready_after="3s"))
    until(browser, lambda d: text(d, candidate) == "revision 2 (green)", 30, "the candidate")
    assert text(browser, live) == "revision 1 (blue)"
    screenshot(browser, tmp_path, "dashboard-flip.png")
    until(browser, lambda d: text(d, live) == "revision 2 (green)", 60, "the flip, shown live")
    assert text(browser, candidate) == "-"
    assert browser.execute_script("return window.sameDocument") is True, "no reload"
    assert releases.selector("web")[naming.LABEL_HASH] != first

    undo = f'{WEB} .actions button[data-command="undo"]'
    disabled = "return document.querySelector(arguments[0]).disabled"
    assert browser.execute_script(disabled, undo) is False
    click(browser, undo)
    until(browser, lambda d: "undo requested" in text(d, "#notice"), 10, "the answer shown")
    until(
        browser,
        lambda d: releases.selector("web")[naming.LABEL_HASH] == first,
        60,
        "the live Service back on revision 1's pods",
    )
    until(browser, lambda d: text(d, live).startswith("revision 1 "), 30, "the undo shown live")
    history = text(browser, f"{WEB} table.history")
    assert "RolledBack" in history and "example/web:2" in history, history
    assert browser.execute_script("return window.sameDocument") is True, "no reload"
    screenshot(browser, tmp_path, "dashboard.png")


def test_a_group_is_shown_with_its_members_and_its_buttons_command_the_group(
    releases: Releases, kube: Any, namespace: str, dashboard: str, browser: Any
) -> None:
    pair(releases, kube, namespace)
    browser.get(dashboard)
    card = 'section[data-group="shop"]'
    until(browser, lambda d: "Healthy" in text(d, f"{card} .badge"), 30, "the group shown")
    members = text(browser, f"{card} table")
    assert "django" in members and "fastapi" in members, members
    undo = browser.execute_script(
        "const b = document.querySelector(arguments[0]); return [b.disabled, b.title]",
        f'{card} button[data-command="undo"]',
    )
    assert undo == [True, f"group {namespace}/shop: no earlier group entry to undo to"]
    click(browser, f'{card} button[data-command="pause"]')
    until(browser, lambda d: "paused" in text(d, "#notice"), 10, "the answer shown")
    assert (
        releases.kube.custom.get_namespaced_custom_object(
            "greenlight.dev", "v1alpha1", namespace, "releasegroups", "shop"
        )["spec"]["paused"]
        is True
    )
    until(
        browser,
        lambda d: text(d, f'{card} button[data-command="resume"]') == "Resume",
        30,
        "the page showing the group paused",
    )


def test_a_judgement_is_drawn_per_metric_with_both_samples(
    releases: Releases,
    dashboard: str,
    browser: Any,
    prometheus: Prometheus,
    metrics_target: MetricsTarget,
    tmp_path: Path,
) -> None:
    """A rolling release's compare check, against series the test sets in the real Prometheus:
    the candidate's latency 25% above the baseline's. The page shows the judgement's row and
    draws both samples of the metric (two boxes), and the Release rolls back."""
    side = {"release": releases.ns}
    metrics_target.set("app_latency", 0.040, labels={**side, "side": "baseline"})
    metrics_target.set("app_latency", 0.050, labels={**side, "side": "candidate"})
    for value, which in ((0.040, "baseline"), (0.050, "candidate")):
        prometheus.wait_value(
            f'app_latency{{release="{releases.ns}",side="{which}"}}', lambda v, x=value: v == x
        )

    def query(which: str) -> str:
        return f'app_latency{{release="{releases.ns}",side="{which}"}}'

    latency = {"name": "latency", "query": query("candidate"), "baselineQuery": query("baseline"),
               "minSamples": 5}  # fmt: skip
    judge = {"name": "judge", "interval": "2s", "inconclusiveLimit": 20, "compare": {
        "address": prometheus.url, "range": "20s", "step": "1s", "metrics": [latency]}}  # fmt: skip
    steps = [{"setWeight": 50}, {"analysis": {"checks": [judge]}}]
    manifest = release_manifest("web", "example/web:1", replicas=2, rolling={"steps": steps})
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1)
    browser.get(dashboard)
    releases.apply(with_image(manifest, "example/web:2"))
    table = f"{WEB} table.judgements"
    until(browser, lambda d: "Fail" in text(d, table), 60, "the failing judgement's row")
    row = text(browser, table)  # (inconclusive first, while the window gathers 5 samples)
    assert "Fail" in row and "+25.0%" in row, row
    boxes = browser.execute_script(
        "return [...document.querySelectorAll(arguments[0] + ' svg.boxes rect')]"
        ".map(r => r.classList[0])",
        table,
    )
    assert sorted(boxes) == ["baseline", "candidate"], boxes
    screenshot(browser, tmp_path, "dashboard-judgement.png")
    releases.wait_phase("web", "Degraded", liveRevision=1, timeout=60)
