"""The hostile corpus against the real production command: Gunicorn, 2 workers, preload.

After every case the server must still be ready and score a valid row, no response may be
a 5xx or echo a sentinel, and no line of the server's log (master and workers, stderr) may
hold a sentinel. Reuses the production-server helpers of tests/app.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.fuzz.corpus import HostileCase, hostile_cases
from tests.fuzz.support import error_body_problem, traceback_in
from tests.support.demo import VALID_ROW, RegisteredDemo
from tests.support.production import start_server, stop, wait_ready

pytestmark = pytest.mark.slow

CORPUS_SECONDS = 180.0  # the whole corpus; about 15 s here


def _problems(case: HostileCase, response: httpx.Response) -> list[str]:
    problems = []
    if response.status_code >= 500:
        problems.append(f"{case.name}: {response.status_code} {response.text[:200]}")
    shape = error_body_problem(
        response.status_code, response.headers.get("content-type", ""), response.content
    )
    if shape:
        problems.append(f"{case.name}: {shape}")
    if traceback_in(response.text):
        problems.append(f"{case.name}: traceback in the response")
    problems.extend(
        f"{case.name}: response echoes {mark}" for mark in case.sentinels if mark in response.text
    )
    return problems


def test_production_server_survives_the_hostile_corpus_without_echo_or_log_leak(
    registry: RegisteredDemo, tmp_path: Path
) -> None:
    server = start_server(registry, tmp_path)
    cases = hostile_cases()
    problems: list[str] = []
    try:
        wait_ready(server)
        deadline = time.monotonic() + CORPUS_SECONDS
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            for case in cases:
                assert time.monotonic() < deadline, f"corpus not done in {CORPUS_SECONDS} s"
                headers = {} if case.content_type is None else {"Content-Type": case.content_type}
                try:
                    response = client.post("/invocations", content=case.body, headers=headers)
                except httpx.TransportError as error:  # e.g. reset after an unhandled error
                    problems.append(f"{case.name}: no response: {error!r}")
                    continue
                problems.extend(_problems(case, response))
            # Each of the two workers answers some of these; both must still serve.
            for _ in range(6):
                assert client.get("/readyz").status_code == 200
                scored = client.post("/invocations", json={"dataframe_records": [VALID_ROW]})
                assert scored.status_code == 200, scored.text
                assert scored.json()["predictions"][0]["risk_level"] in {"low", "medium", "high"}
    finally:
        exit_code = stop(server)
    assert exit_code == 0

    log = server.log_path.read_text(errors="replace")
    leaked = sorted(
        {f"{case.name}: {mark}" for case in cases for mark in case.sentinels if mark in log}
    )
    request_lines = [line for line in server.log_lines() if line.get("message") == "request"]
    assert len(request_lines) >= len(cases)
    with_traceback = [line for line in request_lines if traceback_in(json.dumps(line))]
    assert problems == [], "\n".join(problems)
    assert with_traceback == []
    assert leaked == [], "sentinels reached the server log:\n" + "\n".join(leaked)
