"""A check's CEL condition, judged as a type-checker with `result` declared would judge it.

The `cel` library (cel-rust) parses but does not type-check: it has no declarations, and it
answers an undeclared name or a number where a boolean is due only when the condition is
evaluated, at release time. So the operator checks two things itself, before anything is
created (the API server cannot: the CEL is inside a string):

- every name the condition reads is `result`, a CEL type name, or bound by a macro
  (`result.body.items.all(i, i.ok)`);
- the condition can be a boolean: its outermost operation is not one that gives something
  else (a literal number, string, list or map; `+ - * / %`; `size()`, `string()`, `map()`,
  ...). `result` is of any type (JSON), so `result.body.ready` passes, as it would in cel-go
  with `result` declared `dyn`.

Unknown function names are not judged: cel-rust does not say which functions it has.
"""

from __future__ import annotations

import re

from greenlight.api import expression as cel

DECLARED = ("result",)
"""The one variable a condition sees (engine/checks.py `condition`)."""
TYPE_NAMES = (
    "bool",
    "bytes",
    "double",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
)
"""Names CEL declares itself: type denotations (`type(result) == int`)."""
MACROS = ("all", "exists", "exists_one", "map", "filter")
"""Macros that bind a variable: `<list>.all(x, <uses x>)`."""

_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<string>(?:[rR][bB]?|[bB][rR]?)?
        (?:\"\"\"(?:\\.|[^\\])*?\"\"\"|'''(?:\\.|[^\\])*?'''|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'))
    |(?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[uU]?)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op>\|\||&&|==|!=|<=|>=|[<>+\-*/%!?:.,()\[\]{}])
    """,
    re.VERBOSE,
)
_OPEN = {"(": ")", "[": "]", "{": "}"}
_RELATIONS = ("==", "!=", "<", "<=", ">", ">=", "in")
_ARITHMETIC = ("+", "-", "*", "/", "%")
_BOOLEAN_FUNCTIONS = (
    "all", "exists", "exists_one", "has", "contains", "startsWith", "endsWith", "matches",
    "hasValue",
)  # fmt: skip
_FUNCTIONS = {
    **dict.fromkeys(("size", "int", "uint", "double"), "a number"),
    **dict.fromkeys(
        (
            "getFullYear",
            "getMonth",
            "getDate",
            "getDayOfMonth",
            "getDayOfWeek",
            "getDayOfYear",
            "getHours",
            "getMinutes",
            "getSeconds",
            "getMilliseconds",
        ),
        "a number",
    ),
    "string": "a string",
    "bytes": "bytes",
    "timestamp": "a timestamp",
    "duration": "a duration",
    "type": "a type",
    "map": "a list",
    "filter": "a list",
}
"""What a call gives, by the function's name; any other function: unknown (dyn)."""

Token = tuple[str, str]
BOOL, DYN = "a boolean", "dyn"


def _tokens(source: str) -> list[Token]:
    out: list[Token] = []
    for m in _TOKEN.finditer(source):
        kind = m.lastgroup or ""
        if kind != "space":
            out.append((kind, m[0]))
    return out


def _matching(tokens: list[Token], start: int) -> int:
    """The index of the bracket that closes tokens[start]."""
    depth = 0
    for i in range(start, len(tokens)):
        text = tokens[i][1]
        if tokens[i][0] == "op" and text in _OPEN:
            depth += 1
        elif tokens[i][0] == "op" and text in _OPEN.values():
            depth -= 1
            if depth == 0:
                return i
    return len(tokens) - 1


def _opening(tokens: list[Token], end: int) -> int:
    """The index of the bracket that opens tokens[end]."""
    depth = 0
    for i in range(end, -1, -1):
        text = tokens[i][1]
        if tokens[i][0] == "op" and text in _OPEN.values():
            depth += 1
        elif tokens[i][0] == "op" and text in _OPEN:
            depth -= 1
            if depth == 0:
                return i
    return 0


def _top(tokens: list[Token]) -> list[int]:
    """Indexes of the tokens outside any bracket."""
    out, depth = [], 0
    for i, (kind, text) in enumerate(tokens):
        if kind == "op" and text in _OPEN.values():
            depth -= 1
        if depth == 0:
            out.append(i)
        if kind == "op" and text in _OPEN:
            depth += 1
    return out


def _operand_end(token: Token) -> bool:
    kind, text = token
    return kind in ("string", "number") or (kind == "ident" and text != "in") or text in ")]}"


def _literal(token: Token) -> str:
    kind, text = token
    if kind == "number":
        return "a number"
    if kind == "string":
        return "bytes" if "b" in text[:2].lower() else "a string"
    if text in ("true", "false"):
        return BOOL
    if text == "null":
        return "null"
    if text in TYPE_NAMES:
        return "a type"
    return DYN


def kind(tokens: list[Token]) -> str:
    """What the expression gives: BOOL, DYN (it depends on `result`), or a description of the
    non-boolean it always gives ("a number", ...)."""
    while tokens and tokens[0][1] == "(" and _matching(tokens, 0) == len(tokens) - 1:
        tokens = tokens[1:-1]
    if not tokens:
        return DYN
    top = _top(tokens)
    texts = [(i, tokens[i][1], tokens[i][0]) for i in top]
    question = next((i for i, t, k in texts if k == "op" and t == "?"), None)
    if question is not None:
        nested, colon = 0, len(tokens)
        for i, t, k in texts:
            if i <= question or k != "op":
                continue
            if t == "?":
                nested += 1
            elif t == ":" and nested:
                nested -= 1
            elif t == ":":
                colon = i
                break
        a, b = kind(tokens[question + 1 : colon]), kind(tokens[colon + 1 :])
        if DYN in (a, b):
            return DYN
        return b if a == BOOL else a
    if any(k == "op" and t in ("||", "&&") for _, t, k in texts):
        return BOOL
    if any(t in _RELATIONS and (k == "op" or t == "in") for _, t, k in texts):
        return BOOL
    for i, t, k in texts:
        if k == "op" and t in _ARITHMETIC and i > 0 and _operand_end(tokens[i - 1]):
            return f"the result of {t!r} (a number, string, list or time)"
    if tokens[0] == ("op", "!"):
        return BOOL
    if tokens[0] == ("op", "-"):
        return "a number"
    last = tokens[-1][1]
    if last == ")":
        start = _opening(tokens, len(tokens) - 1)
        if start > 0 and tokens[start - 1][0] == "ident":
            name = tokens[start - 1][1]
            return BOOL if name in _BOOLEAN_FUNCTIONS else _FUNCTIONS.get(name, DYN)
        return DYN
    if last in "]}" and _opening(tokens, len(tokens) - 1) == 0:
        return "a list" if last == "]" else "a map"
    if last == "}":
        return "a message"
    if len(tokens) == 1:
        return _literal(tokens[0])
    return DYN


def _bound(tokens: list[Token]) -> set[str]:
    """Names bound by macros: `.all(x, ...)` binds x."""
    out = set()
    for i in range(len(tokens) - 4):
        dot, macro, paren, name, comma = (t[1] for t in tokens[i : i + 5])
        if (dot, paren, comma) == (".", "(", ",") and macro in MACROS:
            out.add(name)
    return out


def error(source: str) -> str | None:
    """Why `source` cannot work as a condition over `result`, or None."""
    try:
        program = cel.compile(source)
    except ValueError as e:
        return f"not a CEL expression: {str(e).splitlines()[0]}"
    tokens = _tokens(source)
    known = set(DECLARED) | set(TYPE_NAMES) | _bound(tokens)
    undeclared = sorted(set(program.variables()) - known)
    if undeclared:
        names = ", ".join(repr(n) for n in undeclared)
        return (
            f"undeclared name {names}: a condition reads only `result` (the measurement) and"
            " the names its own macros bind"
        )
    what = kind(tokens)
    if what not in (BOOL, DYN):
        return f"gives {what}, not a boolean: a condition must be true or false"
    return None
