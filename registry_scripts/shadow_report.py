"""Print how a shadow candidate compared with the served model on live traffic.

Reads the model_shadow_* metrics of one server (--metrics-url: its ops listener's or main
port's /metrics, every worker merged) or of every pod Prometheus scrapes (--prometheus).
The JSON line holds: the shadow model's name and version; rows compared, dropped, failed,
mismatched; shadow errors; per output field its agreement (share of rows where the two
answers are equal) and, for numeric fields, bounds on the p50/p90/p99 absolute difference;
the largest disagreement cells (field, served value, shadow value, rows, share of the
field's rows); bounds on the shadow's predict latency. Nothing is read from the registry.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from mlflow import MlflowClient

from registry_scripts._cli import build_parser, run
from registry_scripts._shadow import add_source_arguments, read_evidence, summarize


def _report(args: argparse.Namespace, client: MlflowClient) -> dict[str, Any]:
    return summarize(read_evidence(args.metrics_url, args.prometheus, args.selector))


def build_report_parser() -> argparse.ArgumentParser:
    parser = build_parser("shadow_report", __doc__)
    add_source_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_report_parser(), _report, argv)


if __name__ == "__main__":
    sys.exit(main())
