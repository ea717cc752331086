"""`make bench`: our server against `mlflow models serve` on the same model (issue 6)."""
