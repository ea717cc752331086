"""Print the allow-list of deliberate differences, and how many cases agreed, at the end."""

from __future__ import annotations

import pytest

from tests.conformance.allowlist import DIFFERENCES, difference_for
from tests.conformance.results import RESULTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
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
