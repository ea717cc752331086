"""Command-line tools over the MLflow Model Registry: train, register, gate, promote, roll back."""
