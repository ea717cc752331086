"""What business rules cost: 20 rules on a 1-row request in process, and the production
command on the demo model with 20 rules against none, side by side with wrk.

    .venv/bin/python -m bench.guardrails_cost [--quick] [--rounds 2] [--duration 6]

1. In process: the checks a scoring request runs (input rules before predict, output rules
   on the answer, counters included) for 20 rules on one demo applicant; the median of
   many timed calls. Target: at most 0.2 ms.
2. Served: the demo model trained into a temporary SQLite registry and registered twice,
   the second version with the same 20 rules attached (all pass on the bench's body, so
   every rule runs and none refuses). Both servers (2 workers) run at once; cells alternate
   between them and the order flips every round. Target: rules on at most 5 % fewer req/s.
3. The same two servers, one client sending 800 requests one after another to each in
   turn, 2 x rounds times (bench.request_work's client): CPU and wall time per request.
Every target is printed MET or NOT MET. On a shared machine the served figures move with
the neighbours' load: read the CPU per request next to req/s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import replace
from functools import partial
from pathlib import Path

import mlflow

from app.guardrails.rules import parse_rules
from app.observability.metrics import ServingMetrics
from app.readiness import Readiness
from app.runtime.guardrails import RequestGuardrails
from bench.load import find_wrk
from bench.payloads import make_body, make_frame
from bench.registry import create_demo_registry
from bench.request_work import time_requests
from bench.servers import Server, free_port, ours_spec, serving
from bench.side_by_side import Cells, measure, median_rate, print_table
from registry_scripts._registration import register_model_version
from registry_scripts.guardrails import attach_rules

CONNECTIONS = (1, 32)
WORKERS = 2
TARGET_MS = 0.2
TARGET_THROUGHPUT_DROP = 0.05
# Every server admits every connection: a shed 503 is no measure of the rules.
# Requests per cell of the sequential comparison.
SEQUENTIAL_REQUESTS = 800
ADMIT_ALL = {"MAX_CONCURRENT_REQUESTS": str(max(CONNECTIONS) * 2)}

# 20 rules on the demo's columns and answer: ranges, sets, not_null, a comparison and
# conditionals, in enforce mode (the costliest: each is checked and could refuse).
TWENTY_RULES = """\
version: 1
rules:
  - {id: age-range, column: age, min: 18, max: 100, severity: critical, mode: enforce}
  - {id: age-present, column: age, not_null: true, severity: critical, mode: enforce}
  - {id: income-range, column: income, min: 0, max: 10000000, severity: major, mode: enforce}
  - {id: income-present, column: income, not_null: true, severity: major, mode: enforce}
  - {id: cards, column: num_credit_cards, min: 0, max: 50, severity: minor, mode: enforce}
  - {id: history, column: credit_history_years, min: 0, max: 80, severity: minor, mode: enforce}
  - {id: dti, column: debt_to_income, min: 0, max: 3, severity: minor, mode: enforce}
  - {id: late, column: num_late_payments, min: 0, max: 100, severity: minor, mode: enforce}
  - {id: loan, column: loan_amount, gt: 0, max: 10000000, severity: major, mode: enforce}
  - id: employment
    column: employment_status
    in: [employed, self_employed, unemployed, retired, student]
    severity: major
    mode: enforce
  - {id: home, column: home_ownership, in: [own, mortgage, rent], severity: major, mode: enforce}
  - id: history-within-age
    compare: {left: credit_history_years, op: le, right: age}
    severity: minor
    mode: enforce
  - {id: score-range, output: score, min: 0, max: 1, severity: critical, mode: enforce}
  - {id: score-present, output: score, not_null: true, severity: critical, mode: enforce}
  - id: decision-known
    output: decision
    in: [approve, manual_review, decline]
    severity: critical
    mode: enforce
  - {id: level-known, output: risk_level, in: [low, medium, high], severity: major, mode: enforce}
  - id: high-score-not-approved
    when: {output: score, gt: 0.8}
    then: {output: decision, in: [manual_review, decline]}
    severity: major
    mode: enforce
  - id: low-score-low-level
    when: {output: score, lt: 0.3}
    then: {output: risk_level, in: [low]}
    severity: minor
    mode: enforce
  - id: high-level-declined
    when: {output: risk_level, in: [high]}
    then: {output: decision, in: [decline]}
    severity: major
    mode: enforce
  - {id: version-named, output: model_version, not_null: true, severity: minor, mode: enforce}
"""


def time_rules_in_process(calls: int) -> float:
    """Median ms of one 1-row request's checks (input and output) with the 20 rules."""
    guardrails = parse_rules(TWENTY_RULES)
    assert len(guardrails.rules) == 20
    checks = RequestGuardrails(guardrails, ServingMetrics(), Readiness())
    row = make_frame(1).to_dict(orient="records")[0]
    columns = {name: [value] for name, value in row.items()}  # as the scoring path holds it
    answer = [{"score": 0.07, "risk_level": "low", "decision": "approve", "model_version": "2"}]
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        verdict = checks.check_input(columns, 1)
        checks.check_output(columns, answer, verdict)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def _register_with_rules(tracking_uri: str, model_uri: str) -> str:
    """A second version of the same logged model, with the 20 rules attached."""
    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri)
    name, version = model_uri.removeprefix("models:/").split("/")
    source = str(client.get_model_version(name, version).source)
    guarded = str(register_model_version(client, source, name).version)
    attach_rules(client, name, guarded, TWENTY_RULES)
    return f"models:/{name}/{guarded}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s cells")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk run")
    parser.add_argument("--calls", type=int, default=20_000, help="in-process timed calls")
    args = parser.parse_args(argv)
    rounds, duration = (1, 3) if args.quick else (args.rounds, args.duration)
    wrk = find_wrk()

    median_ms = time_rules_in_process(args.calls)
    met = "MET" if median_ms <= TARGET_MS else "NOT MET"
    print(
        f"20 rules, 1-row request, in process: median {median_ms:.4f} ms "
        f"(target <= {TARGET_MS} ms: {met})"
    )

    with (
        tempfile.TemporaryDirectory(prefix="bench-guardrails-") as scratch_dir,
        ExitStack() as stack,
    ):
        scratch = Path(scratch_dir)
        tracking_uri, model_uri = create_demo_registry(scratch / "registry")
        guarded_uri = _register_with_rules(tracking_uri, model_uri)
        body_file = scratch / "body-1.json"
        body_file.write_bytes(make_body(1))
        servers = []
        for label, uri in (("rules off", model_uri), ("20 rules on", guarded_uri)):
            spec = ours_spec(uri, tracking_uri, WORKERS, free_port(), scratch)
            spec = replace(spec, name=label.split()[0], env=spec.env | ADMIT_ALL)
            servers.append((label, stack.enter_context(serving(spec, scratch))))
            print(f"{label}: {spec.describe()}")
        results = measure(servers, CONNECTIONS, rounds, duration, body_file, wrk)
        labels = [label for label, _ in servers]
        print_table(results, labels, CONNECTIONS, partial(_print_target, results, labels))
        _print_sequential(servers, make_body(1), SEQUENTIAL_REQUESTS, max(2, 2 * rounds))
    return 0


def _print_sequential(
    servers: list[tuple[str, Server]], body: bytes, requests: int, rounds: int
) -> None:
    """One client sending requests one after another, the servers alternating: the
    1-connection comparison without wrk's cells, whose placement on the two cores moves a
    lone connection's figures between servers running the same code (bench.request_work)."""
    timed: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in servers}
    for round_index in range(rounds):
        for label, server in servers if round_index % 2 == 0 else servers[::-1]:
            timed[label].append(time_requests(server, body, requests))
    (off_label, _), (on_label, _) = servers
    cpu, wall = (
        {label: statistics.median(t[i] for t in timed[label]) for label in timed} for i in (0, 1)
    )
    drop = 1 - wall[off_label] / wall[on_label]  # requests per second, one after another
    met = "MET" if drop <= TARGET_THROUGHPUT_DROP else "NOT MET"
    print(
        f"\nsequential client, {requests} requests x {rounds} rounds alternating (medians): "
        f"cpu ms/req {cpu[off_label]:.3f} off, {cpu[on_label]:.3f} on "
        f"({cpu[on_label] / cpu[off_label]:.2f}x); wall ms/req {wall[off_label]:.3f} off, "
        f"{wall[on_label]:.3f} on ({wall[on_label] / wall[off_label]:.2f}x)\n"
        f"  1 connection, sequential: rules on {drop:+.1%} fewer req/s "
        f"(target <= {TARGET_THROUGHPUT_DROP:.0%}: {met})"
    )


def _print_target(results: Cells, labels: list[str], connections: int) -> None:
    """Rules on against rules off at one connection count, against the target."""
    on_rate = median_rate(results, labels[1], connections)
    drop = 1 - on_rate / median_rate(results, labels[0], connections)
    met = "MET" if drop <= TARGET_THROUGHPUT_DROP else "NOT MET"
    print(
        f"  {connections} connections: rules on {drop:+.1%} fewer req/s "
        f"(target <= {TARGET_THROUGHPUT_DROP:.0%}: {met})"
    )


if __name__ == "__main__":
    raise SystemExit(main())
