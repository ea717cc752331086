"""Example Airflow DAG: nightly batch scoring with `python -m batch_scoring` (docs/batch.md).

An example to adapt, not part of the tested surface: the tests do not load it with
Airflow's DagBag. Installing apache-airflow 3.3.0 into a virtualenv of its own (its pins
clash with the serving stack's) took 303 s on a 2-core CI-like machine, past the CI time
budget for one parse. It was loaded once by hand, with that version's
`airflow.dag_processing.dagbag.DagBag`: no import errors, one DAG, one BashOperator. The
command it runs is tested, and so are the CronJob and the GitLab schedule that run it.

The task runs where the project and its requirements are installed (PROJECT_DIR, with its
.venv), with MLFLOW_TRACKING_URI (and credentials) in the worker's environment. A non-zero
exit fails the task: 1 means more rows were rejected than allowed (the manifest in the
output says which), which a retry cannot fix, so retries are left to failures of the
machine (the command starts over after a killed run).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

PROJECT_DIR = "/srv/credit-risk-serving"
INPUT = "/data/applicants/{{ ds }}"
OUTPUT = "/data/scores/{{ ds }}"

with DAG(
    dag_id="credit_risk_batch_scoring",
    schedule="30 2 * * *",
    start_date=datetime(2026, 12, 1),
    catchup=False,
    max_active_runs=1,
    tags=["credit-risk", "batch-scoring"],
) as dag:
    BashOperator(
        task_id="score",
        cwd=PROJECT_DIR,
        bash_command=(
            ".venv/bin/python -m batch_scoring"
            " --model models:/credit-risk-scoring/Production"
            f" --input {INPUT} --output {OUTPUT}"
            " --max-reject-share 0.01"
            # For Spark: --engine spark --spark-master spark://spark-master:7077
        ),
        retries=1,
        retry_delay=timedelta(minutes=10),
        execution_timeout=timedelta(hours=6),
    )
