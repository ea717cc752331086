"""A stand-in for kubectl with Argo Rollouts behind it, for k8s/wait-rollout.sh's tests.

The cluster is a JSON file (FAKE_ARGO_STATE): the Deployment's pod template, the
ReplicaSets' templates by pod-template hash, and a timeline of Rollout statuses. Each
`get rollout ... {.status.phase}...` call moves one step along the timeline (and stays on
its last step), as a controller's progress would between two polls.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> int:
    path = Path(os.environ["FAKE_ARGO_STATE"])
    state: dict[str, Any] = json.loads(path.read_text())
    step = state["timeline"][min(state["position"], len(state["timeline"]) - 1)]
    match argv:
        case ["get", "deployment", _, "--namespace", _, "--output", _]:
            print(" ".join(state["deployment"]), end="")
        case ["get", "rollout", _, "--namespace", _, "--output", jsonpath] if "phase" in jsonpath:
            print(f"{step['phase']} {step['current']} {step['stable']}", end="")
            state["position"] += 1
        case ["get", "rollout", _, "--namespace", _, "--output", _]:
            print(step.get("message", ""), end="")
        case ["get", "replicaset", replicaset, "--namespace", _, "--output", _]:
            template = state["replicasets"].get(replicaset.rsplit("-", 1)[-1])
            if template is None:
                print(f'Error from server (NotFound): replicasets "{replicaset}"', file=sys.stderr)
                return 1
            print(" ".join(template), end="")
        case _:
            print(f"fake kubectl: unsupported call {argv}", file=sys.stderr)
            return 2
    path.write_text(json.dumps(state))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
