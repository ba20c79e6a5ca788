"""The learned preprocessing, from stock scikit-learn transformers, built unfitted from a spec."""

from __future__ import annotations

from itertools import groupby

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from app.card import MISSING_CATEGORY, Feature, FeatureKind, Missing, Transform
from training.spec import DatasetSpec


def log1p_transformer() -> FunctionTransformer:
    """log(1 + x) for long-tailed counts and durations (export knows how to write it to ONNX)."""
    return FunctionTransformer(
        np.log1p, inverse_func=np.expm1, validate=False, feature_names_out="one-to-one"
    )


def _numeric_steps(missing: Missing, transform: Transform) -> list[tuple[str, object]]:
    # keep_empty_features: a column without a single value (every value missing or out of
    # range) stays a column, imputed with 0, so the graph keeps one input per feature.
    if missing is Missing.ZERO:
        imputer = SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True)
    else:
        imputer = SimpleImputer(strategy=missing.value, keep_empty_features=True)
    steps: list[tuple[str, object]] = [("impute", imputer)]
    if transform is Transform.LOG1P:
        steps.append(("log1p", log1p_transformer()))
    steps.append(("scale", StandardScaler()))
    return steps


def _boolean_steps(missing: Missing) -> list[tuple[str, object]]:
    strategy = "constant" if missing is Missing.ZERO else "most_frequent"
    imputer = SimpleImputer(strategy=strategy, fill_value=0.0, keep_empty_features=True)
    return [("impute", imputer)]


def _categorical_steps(missing: Missing) -> list[tuple[str, object]]:
    encode = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64)
    if missing is Missing.CATEGORY:
        # The marker is a category like any other: learned if training saw it, ignored if not.
        return [("encode", encode)]
    imputer = SimpleImputer(
        missing_values=MISSING_CATEGORY, strategy="most_frequent", keep_empty_features=True
    )
    return [("impute", imputer), ("encode", encode)]


def _group_key(f: Feature) -> tuple[str, str, str]:
    return (f.kind.value, f.imputation.value, f.transform.value)


def build_preprocessor(spec: DatasetSpec) -> ColumnTransformer:
    """An unfitted ColumnTransformer: one pipeline per (kind, imputation, transform) group.

    Its input is the canonical frame from `training.data`; its output a dense float matrix.
    """
    transformers = []
    ordered = sorted(spec.features, key=_group_key)
    for (kind, missing, transform), group in groupby(ordered, key=_group_key):
        columns = [f.name for f in group]
        if kind == FeatureKind.NUMERIC:
            steps = _numeric_steps(Missing(missing), Transform(transform))
        elif kind == FeatureKind.BOOLEAN:
            steps = _boolean_steps(Missing(missing))
        else:
            steps = _categorical_steps(Missing(missing))
        name = f"{kind}_{missing}" + ("" if transform == Transform.NONE else f"_{transform}")
        transformers.append((name, Pipeline(steps), columns))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
