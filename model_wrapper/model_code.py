"""Models-from-code entry point: MLflow executes this file to build the logged model."""

import mlflow.models

from model_wrapper.scoring_model import RiskScoringModel

mlflow.models.set_model(RiskScoringModel())
