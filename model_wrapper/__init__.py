"""Business-level scoring on top of any fitted scikit-learn or XGBoost classifier."""
