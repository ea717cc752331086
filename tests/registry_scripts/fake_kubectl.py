"""A stand-in for kubectl in the CI-script tests: a one-Deployment cluster in a JSON file.

`kustomize` runs the real kubectl (REAL_KUBECTL); `apply` records the pod template's
model-version label as a new revision; `rollout undo` re-applies the previous revision as
kubectl does; `rollout status` succeeds unless FAKE_KUBECTL_FAIL_STATUS_ONCE names a file
that exists (it is then removed); `get ... jsonpath=...model-version` prints the current
label. Every call is logged in the state file.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml


def _load(path: Path) -> dict[str, Any]:
    if path.exists():
        state: dict[str, Any] = json.loads(path.read_text())
        return state
    return {"revisions": [], "calls": []}


def _applied_version(manifest: Path) -> str:
    for document in yaml.safe_load_all(manifest.read_text()):
        if document and document.get("kind") == "Deployment":
            return str(document["spec"]["template"]["metadata"]["labels"]["model-version"])
    raise SystemExit("fake kubectl: no Deployment in the applied manifests")


def main(argv: list[str]) -> int:
    state_path = Path(os.environ["FAKE_KUBE_STATE"])
    state = _load(state_path)
    state["calls"].append(argv)
    state_path.write_text(json.dumps(state))
    match argv:
        case ["kustomize", *_]:
            os.execv(os.environ["REAL_KUBECTL"], ["kubectl", *argv])  # noqa: S606
        case ["apply", "--filename", manifest]:
            state["revisions"].append(_applied_version(Path(manifest)))
        case ["rollout", "undo", *_]:
            state["revisions"].append(state["revisions"][-2])
        case ["rollout", "status", *_]:
            fail_once = os.environ.get("FAKE_KUBECTL_FAIL_STATUS_ONCE")
            if fail_once and Path(fail_once).is_file():
                Path(fail_once).unlink()
                print("fake kubectl: deployment exceeded its progress deadline", file=sys.stderr)
                return 1
        case ["get", _, *rest] if any("model-version" in arg for arg in rest):
            print(state["revisions"][-1], end="")
        case _:
            print(f"fake kubectl: unsupported call {argv}", file=sys.stderr)
            return 2
    state_path.write_text(json.dumps(state))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
