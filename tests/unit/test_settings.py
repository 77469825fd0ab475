"""One Settings dataclass: `greenlight run` flags, environment fallbacks, chart values, README."""

from __future__ import annotations

import dataclasses
import logging
import pathlib
from collections.abc import Iterator
from typing import Any

import kopf
import pytest
import yaml
from pydantic import alias_generators
from typer.testing import CliRunner

from greenlight.cli import main
from greenlight.kube.settings import Settings

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIELDS = dataclasses.fields(Settings)


@pytest.fixture
def kopf_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """`greenlight run` up to kopf.run, which only records its arguments."""
    called: dict[str, Any] = {}
    monkeypatch.setattr(kopf, "run", lambda **kw: called.update(kw))
    for f in FIELDS:
        monkeypatch.delenv(f.metadata["env"], raising=False)
    root = logging.getLogger()
    before = (root.handlers[:], root.level)
    yield called
    root.handlers[:], root.level = before


def test_defaults_reach_the_operator(kopf_run: dict[str, Any]) -> None:
    result = CliRunner().invoke(main.operator_app, ["run"])
    assert result.exit_code == 0, result.output
    assert kopf_run["memo"]["settings"] == Settings()


def test_flags_reach_the_operator(kopf_run: dict[str, Any]) -> None:
    args = ["run", "--workers", "9", "--max-backoff", "5", "--retry-delay", "0.5"]
    args += ["--expectation-timeout", "3", "--watch-server-timeout", "60"]
    args += ["--request-timeout", "7"]
    result = CliRunner().invoke(main.operator_app, args)
    assert result.exit_code == 0, result.output
    assert kopf_run["memo"]["settings"] == Settings(
        workers=9,
        max_backoff=5,
        retry_delay=0.5,
        expectation_timeout=3,
        watch_server_timeout=60,
        request_timeout=7,
    )


def test_environment_variables_still_work(kopf_run: dict[str, Any]) -> None:
    env = {"GREENLIGHT_WORKERS": "7", "GREENLIGHT_MAX_BACKOFF": "12.5"}
    result = CliRunner().invoke(main.operator_app, ["run"], env=env)
    assert result.exit_code == 0, result.output
    settings = kopf_run["memo"]["settings"]
    assert (settings.workers, settings.max_backoff) == (7, 12.5)
    # `kopf run -m greenlight.handlers` (no CLI) reads the same variables
    assert Settings.from_env(env) == settings


def test_a_bad_value_is_refused_naming_the_flag(kopf_run: dict[str, Any]) -> None:
    result = CliRunner().invoke(main.operator_app, ["run", "--workers", "0"])
    assert result.exit_code != 0
    assert "--workers" in result.output
    assert not kopf_run
    result = CliRunner().invoke(main.operator_app, ["run", "--retry-delay", "100"])
    assert result.exit_code != 0 and "--retry-delay" in result.output


def test_every_setting_is_a_chart_value_with_the_same_default() -> None:
    values = yaml.safe_load((ROOT / "charts" / "greenlight" / "values.yaml").read_text())
    assert values["settings"] == {alias_generators.to_camel(f.name): f.default for f in FIELDS}, (
        "charts/greenlight/values.yaml settings: must list every Settings field, same default"
    )
    rendered = (ROOT / "manifests" / "greenlight.yaml").read_text()
    for f in FIELDS:
        assert f"- {f.metadata['flag']}={f.default:g}\n" in rendered, f.name


def test_the_operating_guide_lists_every_setting() -> None:
    readme = (ROOT / "docs" / "guide" / "operating.md").read_text()
    for f in FIELDS:
        row = f"| `{f.metadata['flag']}` | `{f.metadata['env']}` | "
        row += f"`settings.{alias_generators.to_camel(f.name)}` | {f.default:g} |"
        assert row in readme, row
