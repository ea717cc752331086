"""Business guardrails: rules a risk owner reads, checked on every request.

Plain code over pandas/NumPy with no web framework and no MLflow: the scoring path, the
registry commands and a batch job use the same rules and the same checks.
"""
