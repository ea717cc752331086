"""Observability: what the server tells operators, beside its answers.

Prometheus metrics correct across workers (`metrics`), the logging configuration (`log`),
the stage timings of a scoring request (`stages`) and drift against the training profile
(`drift`). Imports only the base modules (settings, errors); every layer above records here.
"""
