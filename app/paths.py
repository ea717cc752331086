"""The paths the server answers on, named once for every layer that refers to them."""

SCORING_PATH = "/invocations"
PROBE_PATHS = frozenset({"/livez", "/readyz", "/ping", "/health"})
METRICS_PATH = "/metrics"
# Neither counted in flight nor logged when healthy: probes and scrapes every few seconds.
QUIET_PATHS = PROBE_PATHS | {METRICS_PATH}
# The route label of a request no route matched (never the raw path).
UNMATCHED_ROUTE = "<unmatched>"
# The ops listener's POST that closes every worker's guardrail breaker (app.readiness).
BREAKER_RESET_PATH = "/guardrails/breaker/reset"
