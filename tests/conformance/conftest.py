"""Print the allow-lists of deliberate differences (from `mlflow models serve`, and from
MLServer on the V2 protocol), and how many cases agreed, at the end."""

from __future__ import annotations

import pytest

from tests.conformance.allowlist import DIFFERENCES, difference_for
from tests.conformance.results import RESULTS, V2_RESULTS
from tests.conformance.v2_allowlist import V2_DIFFERENCES, v2_difference_for


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if V2_RESULTS:
        _summarise_v2(terminalreporter)
    if not RESULTS:
        return
    cases = [(model, case) for model, run in RESULTS.items() for case in run.answers]
    covered = {d.name: 0 for d in DIFFERENCES}
    for model, case in cases:
        difference = difference_for(model, case)
        if difference is not None:
            covered[difference.name] += 1
    write = terminalreporter.write_line
    terminalreporter.section("conformance with mlflow models serve")
    write(
        f"{len(RESULTS)} models, {len(cases)} cases: "
        f"{len(cases) - sum(covered.values())} answered alike, "
        f"{sum(covered.values())} by a deliberate difference"
    )
    for difference in DIFFERENCES:
        status, code = difference.ours
        write(
            f"- {difference.name}: ours {status} {code or ''}".rstrip()
            + f", MLflow {difference.mlflow_status}, {covered[difference.name]} cases. "
            + difference.reason
        )
    write("- error messages are ours (no echo of the request); NaN is answered as null")


def _summarise_v2(terminalreporter: pytest.TerminalReporter) -> None:
    cases = [(model, case) for model, run in V2_RESULTS.items() for case in run.answers]
    different = [(model, case) for model, case in cases if v2_difference_for(model, case)]
    terminalreporter.section("V2 protocol: conformance with MLServer 1.7.1")
    terminalreporter.write_line(
        f"{len(V2_RESULTS)} models, {len(cases)} cases: {len(cases) - len(different)} "
        f"answered alike, {len(different)} by a deliberate difference"
    )
    for difference in V2_DIFFERENCES:
        count = sum(difference.covers(model, case) for model, case in cases)
        terminalreporter.write_line(
            f"- {difference.name}: ours {difference.ours}, MLServer {difference.mlserver}, "
            f"{count} cases"
        )
