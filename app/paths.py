"""The paths the server answers on, named once for every layer that refers to them."""

from urllib.parse import quote

SCORING_PATH = "/invocations"
# The Open Inference Protocol (V2): its probes, and the templates of its model routes.
V2_PREFIX = "/v2"
V2_LIVE_PATH = "/v2/health/live"
V2_READY_PATH = "/v2/health/ready"
V2_MODEL_TEMPLATE = "/v2/models/{model_name}"
V2_VERSION_TEMPLATE = "/v2/models/{model_name}/versions/{model_version}"
V2_INFER_TEMPLATES = (f"{V2_MODEL_TEMPLATE}/infer", f"{V2_VERSION_TEMPLATE}/infer")
PROBE_PATHS = frozenset({"/livez", "/readyz", "/ping", "/health", V2_LIVE_PATH, V2_READY_PATH})
METRICS_PATH = "/metrics"
# Neither counted in flight nor logged when healthy: probes and scrapes every few seconds.
QUIET_PATHS = PROBE_PATHS | {METRICS_PATH}
# The route label of a request no route matched (never the raw path).
UNMATCHED_ROUTE = "<unmatched>"
# The ops listener's POST that closes every worker's guardrail breaker (app.readiness).
BREAKER_RESET_PATH = "/guardrails/breaker/reset"


def is_v2_path(path: str) -> bool:
    """Answered in the V2 protocol's shapes (its error body) rather than MLflow's."""
    return path == V2_PREFIX or path.startswith(V2_PREFIX + "/")


def v2_infer_paths(model_name: str, model_version: str | None) -> dict[str, str]:
    """The V2 inference paths of the served model (decoded, as in an ASGI scope), each
    with its route template: the paths admission counts and sheds as it does /invocations."""
    plain, versioned = V2_INFER_TEMPLATES
    paths = {plain.format(model_name=model_name): plain}
    if model_version:
        paths[versioned.format(model_name=model_name, model_version=model_version)] = versioned
    return paths


def request_target(path: str) -> bytes:
    """A path as it arrives in a request line (percent-encoded), for the worker's parser."""
    return quote(path).encode("ascii")
