"""The HTTP serving app: MLflow's scoring protocol, probes, metrics, one preloaded model."""

__version__ = "0.1.0"
