"""Argo CD's Lua customizations (manifests/argocd/argocd-cm.yaml) run the way Argo CD runs them:
the script text from the shipped ConfigMap, `obj` a global holding the object, in a real Lua 5.1
(lupa's lua51 module embeds the reference interpreter; Argo CD's gopher-lua implements Lua 5.1).
An action returns the modified object; `merge_patch` turns it into the patch that applies it."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from lupa import lua51

ROOT = Path(__file__).resolve().parents[1]
CONFIGMAP = ROOT / "manifests" / "argocd" / "argocd-cm.yaml"


@cache
def _data() -> dict[str, str]:
    return dict(yaml.safe_load(CONFIGMAP.read_text())["data"])


def health_script(kind: str) -> str:
    return _data()[f"resource.customizations.health.greenlight.dev_{kind}"]


def action_scripts(kind: str) -> tuple[str, dict[str, str]]:
    """(discovery.lua, {action name: action.lua}) of a kind."""
    actions = yaml.safe_load(_data()[f"resource.customizations.actions.greenlight.dev_{kind}"])
    return actions["discovery.lua"], {d["name"]: d["action.lua"] for d in actions["definitions"]}


def _to_lua(lua: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def _from_lua(value: Any) -> Any:
    if lua51.lua_type(value) != "table":
        return value
    items = {k: _from_lua(v) for k, v in value.items()}
    if items and set(items) == set(range(1, len(items) + 1)):
        return [items[i] for i in range(1, len(items) + 1)]
    return items


def run(script: str, obj: dict[str, Any]) -> Any:
    """Run one script with `obj` set, in a fresh Lua 5.1 state; its return value as Python."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=False)
    assert lua.eval("_VERSION") == "Lua 5.1"
    lua.globals()["obj"] = _to_lua(lua, obj)
    return _from_lua(lua.execute(script))


def health(obj: dict[str, Any]) -> dict[str, str]:
    """{"status": ..., "message": ...} from the kind's health.lua."""
    return dict(run(health_script(obj["kind"]), obj))


def discover(obj: dict[str, Any]) -> dict[str, bool]:
    """Action name -> enabled, from the kind's discovery.lua."""
    discovery, _ = action_scripts(obj["kind"])
    return {name: not a.get("disabled", False) for name, a in run(discovery, obj).items()}


def act(name: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The object an action returns."""
    _, definitions = action_scripts(obj["kind"])
    result = run(definitions[name], obj)
    assert isinstance(result, dict), f"action {name} returned {result!r}"
    return result


def merge_patch(before: Any, after: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns `before` into `after` (an empty Lua table
    comes back as {} and equals an empty list)."""
    if isinstance(before, dict) and isinstance(after, dict):
        patch: dict[str, Any] = {}
        for key in before.keys() - after.keys():
            patch[key] = None
        for key, value in after.items():
            if key not in before:
                patch[key] = value
            elif (sub := merge_patch(before[key], value)) != {}:
                patch[key] = sub
        return patch
    if after == before or (after == {} and before == []):
        return {}
    return after
