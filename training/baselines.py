"""Simple baselines the network must be compared with, fitted on the same preprocessed features."""

from __future__ import annotations

from typing import Any

from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression


def build_baselines(seed: int) -> dict[str, Any]:
    """Unfitted estimators by report name: a linear model and gradient-boosted trees."""
    return {
        "logistic_regression": LogisticRegression(max_iter=2000),
        "hist_gradient_boosting": HistGradientBoostingClassifier(random_state=seed),
    }
