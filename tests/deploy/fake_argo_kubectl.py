"""A stand-in for kubectl with Argo Rollouts behind it, for k8s/wait-rollout.sh's tests.

The cluster is a JSON file (FAKE_ARGO_STATE): the Deployment's pod template, the
ReplicaSets' templates by pod-template hash, and a timeline of Rollout statuses. Each
`get rollout ... {.status.phase}...` call moves one step along the timeline (and stays on
its last step), as a controller's progress would between two polls.
"""

from __future__ import annotations

import sys

from tests.support.stand_ins import State, run_stand_in, unsupported


def answer(argv: list[str], state: State) -> int:
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
            return unsupported("kubectl", argv)
    return 0


if __name__ == "__main__":
    sys.exit(run_stand_in("FAKE_ARGO_STATE", answer, {}))
