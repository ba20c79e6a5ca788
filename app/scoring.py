"""Scoring: validated rows to graph inputs, probabilities, and catalogue rankings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.bundle import Bundle, graph_dtype, missing_value
from app.card import Feature, FeatureKind, FeatureRole, canonical_category
from app.errors import ServiceError


def graph_value(feature: Feature, value: Any) -> object:
    """A validated request value in the graph's type; None becomes the feature's missing value."""
    if value is None:
        return missing_value(feature)
    if feature.kind is FeatureKind.CATEGORICAL:
        return canonical_category(value)
    return float(value)


def rows_to_feeds(rows: list[Any], features: list[Feature]) -> dict[str, np.ndarray]:
    """Column arrays of shape [N, 1], one per feature, from validated row models."""
    feeds: dict[str, np.ndarray] = {}
    for f in features:
        column = [graph_value(f, getattr(row, f.name)) for row in rows]
        feeds[f.name] = np.array(column, dtype=graph_dtype(f)).reshape(-1, 1)
    return feeds


def predict(bundle: Bundle, rows: list[Any]) -> np.ndarray:
    """Purchase probability per row, in request order."""
    return bundle.run(rows_to_feeds(rows, bundle.card.features))


@dataclass(frozen=True)
class Ranking:
    item_ids: list[str]
    scores: list[float]
    cold_start: bool
    unknown_candidates: list[str]
    scored: int


USER_SIDE = (FeatureRole.USER, FeatureRole.CONTEXT)


def _user_values(
    bundle: Bundle, user_id: str | None, features: Any
) -> tuple[dict[str, object], bool]:
    """Values of every user and context feature: the user table first, then the request's own."""
    non_item = [f for f in bundle.card.features if f.role in USER_SIDE]
    values = {f.name: missing_value(f) for f in non_item}
    cold_start = False
    if user_id is not None:
        if bundle.users is None:
            raise ServiceError(
                422,
                "no_user_table",
                f"model {bundle.name!r} has no user table; send the user's features instead",
                [{"field": "user_id", "problem": "this model cannot look users up by id"}],
            )
        row = bundle.users.index.get(user_id)
        if row is None:
            cold_start = True
        else:
            for f in bundle.card.with_role(FeatureRole.USER):
                values[f.name] = bundle.users.columns[f.name][row]
    if features is not None:
        for f in non_item:
            given = getattr(features, f.name)
            if given is not None:
                values[f.name] = graph_value(f, given)
    return values, cold_start


def recommend(
    bundle: Bundle,
    *,
    user_id: str | None,
    features: Any,
    candidates: list[str] | None,
    exclude: list[str],
    k: int,
) -> Ranking:
    """Score every candidate item for one user in one vectorised call; return the top k."""
    catalog = bundle.catalog
    if catalog is None:
        raise ServiceError(
            409,
            "no_catalog",
            f"model {bundle.name!r} has no item catalogue to rank; use /predict, or a model "
            "trained with a catalogue",
        )
    values, cold_start = _user_values(bundle, user_id, features)
    unknown: list[str] = []
    if candidates is None:
        index = np.arange(len(catalog))
    else:
        found = []
        for item in dict.fromkeys(candidates):  # de-duplicated, first occurrence wins
            i = catalog.index.get(item)
            if i is None:
                unknown.append(item)
            else:
                found.append(i)
        index = np.array(found, dtype=np.int64)
    if exclude and len(index):
        banned = np.array([catalog.index[e] for e in exclude if e in catalog.index], dtype=np.int64)
        index = index[~np.isin(index, banned)]
    if len(index) == 0:
        return Ranking([], [], cold_start, unknown, 0)

    n = len(index)
    pair_values: dict[str, np.ndarray] = {}
    for table in bundle.pairs:
        pair_values |= table.values(None if cold_start else user_id, index)
    feeds: dict[str, np.ndarray] = {}
    for f in bundle.card.features:
        if f.role is FeatureRole.ITEM:
            feeds[f.name] = catalog.columns[f.name][index].reshape(-1, 1)
        elif f.role is FeatureRole.USER_ITEM:
            column = pair_values.get(f.name)
            if column is None:  # no table provides it: missing, imputed by the graph
                column = np.full(n, missing_value(f), dtype=graph_dtype(f))
            feeds[f.name] = column.reshape(-1, 1)
        else:
            feeds[f.name] = np.full((n, 1), values[f.name], dtype=graph_dtype(f))
    scores = bundle.run(feeds)
    top = _top_k(scores, k)
    return Ranking(
        item_ids=[str(catalog.ids[index[i]]) for i in top],
        scores=[float(scores[i]) for i in top],
        cold_start=cold_start,
        unknown_candidates=unknown,
        scored=n,
    )


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest scores, best first; ties keep catalogue order."""
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
        # argpartition's choice among ties at the boundary is arbitrary; a stable sort of the
        # candidates that reach the k-th score keeps the answer deterministic.
        kth = scores[part].min()
        part = np.flatnonzero(scores >= kth)
    else:
        part = np.arange(len(scores))
    order = np.lexsort((part, -scores[part]))
    return part[order][:k]
