"""python -m batch_scoring: score a table with one model version, as /invocations does.

    python -m batch_scoring --model models:/credit-risk-scoring/Production \\
        --input in/ --output out/ [--engine local|spark] [--max-reject-share 0.01]

The model (a stage, an alias, `latest`, a version, or a model directory) is resolved to
one version at start; every row is scored with it. Rows the model refuses go to
out/rejects/ with the reason; out/_manifest.json, written last, says what was scored.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from app.errors import ModelLoadError
from batch_scoring.answers import ModelFailedError
from batch_scoring.inputs import InputError
from batch_scoring.output import OutputError
from batch_scoring.run import BatchOptions, run_batch
from model_fetch.redaction import redact

EXIT_CODES = """\
exit codes: 0 succeeded, 1 failed: more rows rejected than --max-reject-share,
  2 usage or input error, 3 the model cannot be resolved, loaded or used,
  4 the model failed while scoring, 5 the output is held by another run or not replaceable.
registry: MLFLOW_TRACKING_URI (default sqlite:///mlflow.db), as for the server."""

logger = logging.getLogger("batch_scoring")


def build_parser() -> argparse.ArgumentParser:
    defaults = BatchOptions(model_uri="", input=Path(), output=Path())
    parser = argparse.ArgumentParser(
        prog="python -m batch_scoring",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        required=True,
        help="e.g. models:/NAME/Production, models:/NAME@champion, models:/NAME/3",
    )
    parser.add_argument(
        "--input", required=True, type=Path, help="a Parquet or CSV file, or a directory of them"
    )
    parser.add_argument("--output", required=True, type=Path, help="the directory to create")
    parser.add_argument("--engine", choices=("local", "spark"), default=defaults.engine)
    parser.add_argument(
        "--max-reject-share",
        type=_share,
        default=defaults.max_reject_share,
        help="share of input rows that may be rejected before the run fails (default %(default)s)",
    )
    parser.add_argument(
        "--chunk-rows",
        type=_positive,
        default=defaults.chunk_rows,
        help="rows per chunk (local engine; default %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        default=defaults.workers,
        help="scoring processes, this one included (local engine; default: the cores, %(default)s)",
    )
    parser.add_argument(
        "--spark-master",
        default=defaults.spark_master,
        help="Spark master URL (spark engine; default %(default)s)",
    )
    parser.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="COLUMN",
        help="an input column to copy into the scores beside input_file and input_row (repeatable)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an output of a completed run"
    )
    return parser


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a share is between 0 and 1")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = BatchOptions(
        model_uri=args.model,
        input=args.input,
        output=args.output,
        engine=args.engine,
        max_reject_share=args.max_reject_share,
        chunk_rows=args.chunk_rows,
        workers=args.workers,
        spark_master=args.spark_master,
        keep=tuple(args.keep),
        overwrite=args.overwrite,
    )
    try:
        manifest = run_batch(options)
    except InputError as error:
        return _fail(2, str(error))
    except ModelLoadError as error:
        return _fail(3, str(error))
    except ModelFailedError as error:
        return _fail(4, str(error))
    except OutputError as error:
        return _fail(5, str(error))
    summary = {key: manifest[key] for key in ("status", "failure", "model", "rows")}
    print(json.dumps({"output": str(options.output), **summary}))
    return 0 if manifest["status"] == "succeeded" else 1


def _fail(code: int, message: str) -> int:
    print(f"batch scoring failed: {redact(message)}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
