"""KServe's REST client (kserve.InferenceRESTClient, V2 protocol) against a server, as a
KServe user's code calls it. Runs in .venv-kserve-client (kserve pins pandas<3), driven by
tests/app/test_v2_clients.py: a JSON plan on stdin, what the client saw as JSON on stdout.

The plan: {"base_url", "model", "version", "inputs": [{name, shape, datatype, data}],
"bad_inputs": [...]} -- `bad_inputs` must be refused; the client's error is reported.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


def _infer_request(model: str, inputs: list[dict[str, Any]]) -> Any:
    return InferRequest(
        model_name=model,
        infer_inputs=[
            InferInput(
                name=tensor["name"],
                shape=tensor["shape"],
                datatype=tensor["datatype"],
                data=tensor["data"],
            )
            for tensor in inputs
        ],
        parameters={"content_type": "pd"},
    )


def _plain(values: Any) -> Any:
    return [value.decode() if isinstance(value, bytes) else value for value in values]


async def run(plan: dict[str, Any]) -> dict[str, Any]:
    base_url, model = plan["base_url"], plan["model"]
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    seen: dict[str, Any] = {
        "server_live": await client.is_server_live(base_url),
        "server_ready": await client.is_server_ready(base_url),
        "model_ready": await client.is_model_ready(base_url, model),
    }
    response = await client.infer(base_url, _infer_request(model, plan["inputs"]), model)
    seen["model_name"] = response.model_name
    seen["outputs"] = {
        output.name: {
            "datatype": output.datatype,
            "shape": list(output.shape),
            "data": _plain(output.as_numpy().reshape(-1).tolist()),
        }
        for output in response.outputs
    }
    try:
        await client.infer(base_url, _infer_request(model, plan["bad_inputs"]), model)
        seen["refused"] = None
    except httpx.HTTPStatusError as error:
        seen["refused"] = {"status": error.response.status_code, "message": str(error)}
    await client.close()
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(json.load(sys.stdin)))))
