"""A stand-in for buildah and the image registry (no registry runs here), kept in a JSON file.

`login --password-stdin` needs a non-empty password on stdin; `build` needs a Dockerfile in
its context and records the tag and labels; `push` needs a login and a tag built before,
and records it as pushed. Every call is logged in FAKE_IMAGE_STATE.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def _option_values(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == name]


def main(argv: list[str]) -> int:
    state_path = Path(os.environ["FAKE_IMAGE_STATE"])
    state: dict[str, Any] = (
        json.loads(state_path.read_text())
        if state_path.exists()
        else {"logged_in": None, "built": {}, "pushed": [], "calls": []}
    )
    state["calls"].append(argv)
    match argv:
        case ["login", *options] if "--password-stdin" in options:
            if not sys.stdin.read().strip() or not _option_values(options, "--username"):
                print("fake buildah: login needs a username and a password", file=sys.stderr)
                return 1
            state["logged_in"] = options[-1]
        case ["build", *options, context] if Path(context, "Dockerfile").is_file():
            labels = dict(label.split("=", 1) for label in _option_values(options, "--label"))
            for tag in _option_values(options, "--tag"):
                state["built"][tag] = labels
        case ["push", image] if image in state["built"] and state["logged_in"]:
            if not image.startswith(f"{state['logged_in']}/"):
                print(f"fake buildah: not logged in to the registry of {image}", file=sys.stderr)
                return 1
            state["pushed"].append(image)
        case _:
            print(f"fake buildah: unsupported or out-of-order call {argv}", file=sys.stderr)
            return 2
    state_path.write_text(json.dumps(state))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
