"""Before timing: both servers answer 200 to a body, with the same predictions."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Ours fills model_version from the registry; MLflow's server cannot know it and leaves "".
IGNORED_FIELDS = frozenset({"model_version"})
# Wider predictions (the overhead bench's identity models) are described by their count.
MAX_FIELDS_NAMED = 8


@dataclass(frozen=True)
class Verification:
    rows: int
    statuses: dict[str, int]
    equal: bool
    detail: str


def post_json(url: str, body: bytes) -> tuple[int, bytes]:
    # Our own http://127.0.0.1 URL, never user input: the scheme check (S310) does not apply.
    request = urllib.request.Request(  # noqa: S310
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _differences(
    ours: list[dict[str, Any]], theirs: list[dict[str, Any]]
) -> tuple[list[str], float]:
    """Mismatches (at most a few, described) and the largest absolute numeric difference."""
    problems: list[str] = []
    largest = 0.0
    if len(ours) != len(theirs):
        return [f"{len(ours)} predictions against {len(theirs)}"], math.inf
    for index, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
        fields = (mine.keys() | other.keys()) - IGNORED_FIELDS
        for field in sorted(fields):
            a, b = mine.get(field), other.get(field)
            if isinstance(a, float) and isinstance(b, float):
                largest = max(largest, abs(a - b))
                same = math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
            else:
                same = a == b
            if not same and len(problems) < 3:
                problems.append(f"row {index} {field}: ours {a!r}, theirs {b!r}")
    return problems, largest


def verify(ours_url: str, theirs_url: str, body: bytes, rows: int) -> Verification:
    answers = {
        "ours": post_json(ours_url + "/invocations", body),
        "theirs": post_json(theirs_url + "/invocations", body),
    }
    statuses = {name: status for name, (status, _) in answers.items()}
    if any(status != 200 for status in statuses.values()):
        snippets = "; ".join(f"{name}: {answer[1][:200]!r}" for name, answer in answers.items())
        return Verification(rows, statuses, False, f"not both 200: {snippets}")
    ours, theirs = (json.loads(answer[1])["predictions"] for answer in answers.values())
    problems, largest = _differences(ours, theirs)
    if problems:
        return Verification(rows, statuses, False, "; ".join(problems))
    compared = sorted(set(ours[0]) - IGNORED_FIELDS) if ours else []
    fields = ", ".join(compared) if len(compared) <= MAX_FIELDS_NAMED else f"{len(compared)} fields"
    detail = (
        f"{len(ours)} predictions equal in {fields} "
        f"(largest numeric difference {largest:.1e}; model_version not compared)"
    )
    return Verification(rows, statuses, True, detail)


def verify_rows(
    rows: int,
    ours: list[dict[str, Any]],
    name: str,
    status: int,
    answer: bytes,
    read: Callable[[bytes], list[dict[str, Any]]],
) -> Verification:
    """Another server's answer, in its own protocol (`read` turns it into rows), against
    our predictions for the same rows: the peers' check in `bench.peers`."""
    statuses = {"ours": 200, name: status}
    if status != 200:
        return Verification(rows, statuses, False, f"{name} answered {status}: {answer[:300]!r}")
    try:
        theirs = read(answer)
    except ValueError as error:  # not JSON, or not the protocol's shape
        return Verification(rows, statuses, False, f"unreadable answer ({error}): {answer[:300]!r}")
    problems, largest = _differences(ours, theirs)
    if problems:
        return Verification(rows, statuses, False, "; ".join(problems))
    compared = sorted(set(ours[0]) - IGNORED_FIELDS) if ours else []
    fields = ", ".join(compared) if len(compared) <= MAX_FIELDS_NAMED else f"{len(compared)} fields"
    return Verification(
        rows,
        statuses,
        True,
        f"{len(ours)} predictions equal in {fields} (largest numeric difference {largest:.1e})",
    )
