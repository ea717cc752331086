"""Failure drills: a local production-like stack, one failure injected at a time, and the
time until an alert reaches Alertmanager's receiver (MTTD) and until clients are answered
correctly again (MTTR), measured. `make drill` runs them all; docs/drills.md has the report.
"""
