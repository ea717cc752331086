"""A stand-in for kubectl: a one-Deployment cluster kept in a JSON file (FAKE_KUBE_STATE).

The state holds the Deployment's namespace and its rollout history, one pod template
(model-version label and image) per rollout. It behaves as kubectl does where our scripts
rely on it:
- `kustomize` runs the real kubectl (REAL_KUBECTL);
- `apply --filename F` rolls out F's Deployment template, unless it is the current one,
  and takes the Deployment's namespace from F;
- every other call must name that namespace, or fails as NotFound, as a real cluster does;
- each distinct template is one ReplicaSet whose revision is the last rollout that used it;
  `rollout undo` re-applies the previous revision, `--to-revision=N` revision N;
- `get deployment/...` and `get replicasets` answer with the real kubectl's JSONPath engine
  (`annotate --local`) on objects built from the state, so the expressions are real;
- `rollout status` succeeds unless FAKE_KUBECTL_FAIL_STATUS_ONCE names a file that exists
  (it is then removed).
Every call is logged in the state file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tests.support.stand_ins import State, option_values, run_stand_in, unsupported

Template = dict[str, str]
STATE_VARIABLE = "FAKE_KUBE_STATE"
INITIAL_STATE: State = {"namespace": None, "revisions": [], "calls": []}
# The Deployment's selector: its ReplicaSets carry this label.
SELECTOR = "app.kubernetes.io/name=credit-risk-serving"
_RANGE_ITEMS = re.compile(r"^\{range \.items\[\*\]\}(?P<each>.*)\{end\}$", re.DOTALL)


def template(model_version: str, image: str) -> Template:
    return {"model-version": model_version, "image": image}


def replica_sets(revisions: list[Template]) -> list[tuple[int, Template]]:
    """(revision, template) per ReplicaSet: a template's revision is its latest rollout."""
    latest: dict[str, int] = {}
    for number, each in enumerate(revisions, start=1):
        latest[json.dumps(each, sort_keys=True)] = number
    return sorted((number, json.loads(key)) for key, number in latest.items())


def _applied(manifest: Path) -> tuple[str, Template]:
    for document in yaml.safe_load_all(manifest.read_text()):
        if document and document.get("kind") == "Deployment":
            spec = document["spec"]["template"]
            (container,) = spec["spec"]["containers"]
            labels = spec["metadata"]["labels"]
            namespace = document["metadata"].get("namespace", "default")
            return namespace, template(str(labels["model-version"]), container["image"])
    raise SystemExit("fake kubectl: no Deployment in the applied manifests")


def _object(kind: str, each: Template, revision: int | None = None) -> dict[str, Any]:
    annotations = {} if revision is None else {"deployment.kubernetes.io/revision": str(revision)}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": "credit-risk-serving", "annotations": annotations},
        "spec": {
            "template": {
                "metadata": {"labels": {"model-version": each["model-version"]}},
                "spec": {"containers": [{"name": "server", "image": each["image"]}]},
            }
        },
    }


def _jsonpath(objects: list[dict[str, Any]], expression: str) -> str:
    """Evaluate a JSONPath expression with the real kubectl, per object for a range."""
    ranged = _RANGE_ITEMS.match(expression)
    each = ranged.group("each") if ranged else expression
    if not objects:
        return ""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump({"apiVersion": "v1", "kind": "List", "items": objects}, file)
        file.flush()
        command = [os.environ["REAL_KUBECTL"], "annotate", "--local", "-f", file.name, "fake=1"]
        completed = subprocess.run(
            [*command, "--output", f"jsonpath={each}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    return completed.stdout


def _option(argv: list[str], name: str) -> str | None:
    return next(iter(option_values(argv, name)), None)


def answer(argv: list[str], state: State) -> int:
    state["calls"].append(argv)
    if argv[:1] == ["kustomize"]:
        Path(os.environ[STATE_VARIABLE]).write_text(json.dumps(state))  # logged before exec
        os.execv(os.environ["REAL_KUBECTL"], ["kubectl", *argv])  # noqa: S606
    revisions: list[Template] = state["revisions"]
    if argv[:1] == ["apply"]:
        namespace, applied = _applied(Path(_option(argv, "--filename") or ""))
        if state["namespace"] not in (None, namespace):
            print(f"fake kubectl: the Deployment is in {state['namespace']}", file=sys.stderr)
            return 1
        state["namespace"] = namespace
        if not revisions or revisions[-1] != applied:
            revisions.append(applied)
    elif (_option(argv, "--namespace") or "default") != state["namespace"] or not (
        {"deployment/credit-risk-serving", "replicasets"} & set(argv)
    ):
        print(f"Error from server (NotFound): not found: {argv}", file=sys.stderr)
        return 1
    elif argv[:2] == ["rollout", "undo"]:
        sets = replica_sets(revisions)
        to_revision = _option(argv, "--to-revision")
        wanted = int(to_revision) if to_revision else sets[-2][0] if len(sets) > 1 else 0
        found = [each for number, each in sets if number == wanted]
        if not found:
            print(f"error: unable to find specified revision {wanted} in history", file=sys.stderr)
            return 1
        if found[0] == revisions[-1]:
            print(f"skipped rollback (current template already matches revision {wanted})")
        else:
            revisions.append(found[0])
    elif argv[:2] == ["rollout", "status"]:
        fail_once = os.environ.get("FAKE_KUBECTL_FAIL_STATUS_ONCE")
        if fail_once and Path(fail_once).is_file():
            Path(fail_once).unlink()
            print("fake kubectl: deployment exceeded its progress deadline", file=sys.stderr)
            return 1
    elif argv[:1] == ["get"] and (output := _option(argv, "--output") or "").startswith(
        "jsonpath="
    ):
        expression = output.removeprefix("jsonpath=")
        if argv[1] == "replicasets":
            selected = _option(argv, "--selector") == SELECTOR
            objects = [_object("ReplicaSet", each, n) for n, each in replica_sets(revisions)]
            objects = objects if selected else []
        else:
            objects = [_object("Deployment", revisions[-1])]
        print(_jsonpath(objects, expression), end="")
    else:
        return unsupported("kubectl", argv)
    return 0


if __name__ == "__main__":
    sys.exit(run_stand_in(STATE_VARIABLE, answer, INITIAL_STATE))
