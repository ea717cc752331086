"""A stand-in for buildah and the image registry (no registry runs here), kept in a JSON file.

`login --password-stdin` needs a non-empty password on stdin; `build` needs a Dockerfile in
its context and records the tag and labels; `push` needs a login and a tag built before,
and records it as pushed. Every call is logged in FAKE_IMAGE_STATE.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.stand_ins import State, option_values, run_stand_in, unsupported


def answer(argv: list[str], state: State) -> int:
    state["calls"].append(argv)
    match argv:
        case ["login", *options] if "--password-stdin" in options:
            if not sys.stdin.read().strip() or not option_values(options, "--username"):
                print("fake buildah: login needs a username and a password", file=sys.stderr)
                return 1
            state["logged_in"] = options[-1]
        case ["build", *options, context] if Path(context, "Dockerfile").is_file():
            labels = dict(label.split("=", 1) for label in option_values(options, "--label"))
            for tag in option_values(options, "--tag"):
                state["built"][tag] = labels
        case ["push", image] if image in state["built"] and state["logged_in"]:
            if not image.startswith(f"{state['logged_in']}/"):
                print(f"fake buildah: not logged in to the registry of {image}", file=sys.stderr)
                return 1
            state["pushed"].append(image)
        case _:
            return unsupported("buildah", argv)
    return 0


if __name__ == "__main__":
    initial: State = {"logged_in": None, "built": {}, "pushed": [], "calls": []}
    sys.exit(run_stand_in("FAKE_IMAGE_STATE", answer, initial))
