"""The `cel` library's compiler and evaluator, without its interactive shell.

`cel/__init__.py` imports `cel.cli`, a REPL built on typer, prompt_toolkit, pygments and rich:
about 10 MiB of resident memory in every operator process, for a shell nothing here runs. It
is imported here with an empty module standing in for `cel.cli` while the package loads, then
the stand-in is dropped from `sys.modules` (an explicit `import cel.cli` later still gets the
real one). Everything else comes from the compiled extension, as `import cel` gives it.
"""

from __future__ import annotations

import sys
import types

_shell = types.ModuleType("cel.cli")
if "cel" not in sys.modules:
    sys.modules.setdefault("cel.cli", _shell)
try:
    import cel
finally:
    if sys.modules.get("cel.cli") is _shell:
        del sys.modules["cel.cli"]

compile = cel.compile
evaluate = cel.evaluate
Program = cel.Program

__all__ = ["Program", "compile", "evaluate"]
