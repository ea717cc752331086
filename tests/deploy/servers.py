"""Starting the server the way a pod would, and talking to it on 127.0.0.1 only."""

from __future__ import annotations

import json
from typing import Any

import httpx

from registry_scripts.demo_data import LABEL, make_credit_dataset

from .manifests import Manifest, find, server_container


def pod_environment(docs: list[Manifest]) -> dict[str, str]:
    """The environment the rendered Deployment gives its container: the ConfigMap it reads,
    then its literal env entries, which win as they do in Kubernetes."""
    env = dict(find(docs, "ConfigMap")["data"])
    env.update(
        {item["name"]: item["value"] for item in server_container(docs)["env"] if "value" in item}
    )
    return env


def check_serves(base_url: str, version: str) -> dict[str, Any]:
    """The server reports `version` of the demo model and scores one applicant with it."""
    described: dict[str, Any] = httpx.get(f"{base_url}/version", timeout=10).json()
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
