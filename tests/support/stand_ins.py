"""Stand-ins for commands that cannot run here (a cluster's kubectl, buildah and an image
registry): each is a Python module whose state lives in a JSON file, put first on PATH."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import PROJECT_ROOT

State = dict[str, Any]


def install_stand_in(bin_dir: Path, command: str, module: str) -> Path:
    """An executable `bin_dir/command` that runs `python -m module` with its arguments,
    from this checkout whatever directory it is called in (-P: not the caller's)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / command
    path.write_text(
        f'#!/bin/sh\nPYTHONPATH="{PROJECT_ROOT}" exec "{sys.executable}" -P -m {module} "$@"\n'
    )
    path.chmod(0o755)
    return path


def run_stand_in(
    state_variable: str, answer: Callable[[list[str], State], int], initial: State
) -> int:
    """Answer this call (sys.argv) from the JSON state file named by $`state_variable`
    (`initial` when it does not exist yet), then save the state, whatever `answer` said."""
    path = Path(os.environ[state_variable])
    state = {**initial, **(json.loads(path.read_text()) if path.exists() else {})}
    code = answer(sys.argv[1:], state)
    path.write_text(json.dumps(state))
    return code


def option_values(argv: list[str], name: str) -> list[str]:
    """Every value of option `name`, given as `name value` or `name=value`."""
    values = []
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            values.append(argv[index + 1])
        elif arg.startswith(f"{name}="):
            values.append(arg.split("=", 1)[1])
    return values


def unsupported(tool: str, argv: list[str]) -> int:
    """A call the stand-in does not know: say so, exit 2, so the test sees it."""
    print(f"fake {tool}: unsupported call {argv}", file=sys.stderr)
    return 2
