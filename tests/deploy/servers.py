"""Starting the server the way a pod would, and talking to it on 127.0.0.1 only."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx

from registry_scripts.demo_data import LABEL, make_credit_dataset

from .manifests import Manifest, find, server_container


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pod_environment(docs: list[Manifest]) -> dict[str, str]:
    """The environment the rendered Deployment gives its container: the ConfigMap it reads,
    then its literal env entries, which win as they do in Kubernetes."""
    env = dict(find(docs, "ConfigMap")["data"])
    env.update(
        {item["name"]: item["value"] for item in server_container(docs)["env"] if "value" in item}
    )
    return env


def wait_ready(base_url: str, seconds: float, alive: Callable[[], bool] | None = None) -> None:
    """Poll /readyz until 200, bounded in time; `alive()` False stops early (process died)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise AssertionError("the server exited before it was ready")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{base_url}/readyz did not answer 200 within {seconds} s")


def check_serves(base_url: str, version: str) -> dict[str, Any]:
    """The server reports `version` of the demo model and scores one applicant with it."""
    described = httpx.get(f"{base_url}/version", timeout=10).json()
    assert described["name"] == "credit-risk-scoring"
    assert described["version"] == version
    row = make_credit_dataset(n_rows=1, seed=3).drop(columns=[LABEL])
    body = {"dataframe_split": json.loads(row.to_json(orient="split", index=False))}
    response = httpx.post(f"{base_url}/invocations", json=body, timeout=30)
    assert response.status_code == 200, response.text
    (prediction,) = response.json()["predictions"]
    assert 0.0 <= prediction["score"] <= 1.0
    assert httpx.get(f"{base_url}/livez", timeout=5).status_code == 200
    return described
