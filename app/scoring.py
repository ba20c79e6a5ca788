"""Scoring: validated rows to graph inputs, probabilities, and catalogue rankings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.bundle import Bundle, graph_value, missing_value
from app.card import MISSING_CATEGORY, FeatureRole
from app.errors import ServiceError


def _category(value: str | None) -> str:
    # Requests carry validated strings (integer codes already as their digits).
    if value is None:
        return MISSING_CATEGORY
    return value.strip() or MISSING_CATEGORY


def rows_to_feeds(bundle: Bundle, rows: list[Any]) -> dict[str, np.ndarray]:
    """The packed graph inputs for validated row models: one float32 block, one object block.

    This runs on every /predict request, so it builds each block with one numpy call; numpy
    turns None into NaN by itself.
    """
    numbers = np.array(
        [[getattr(r, name) for name in bundle.numbers] for r in rows], dtype=np.float32
    ).reshape(len(rows), len(bundle.numbers))
    categories = np.array(
        [[_category(getattr(r, name)) for name in bundle.categories] for r in rows], dtype=object
    ).reshape(len(rows), len(bundle.categories))
    return bundle.feeds(numbers, categories)


def predict(bundle: Bundle, rows: list[Any]) -> np.ndarray:
    """Purchase probability per row, in request order."""
    return bundle.run(rows_to_feeds(bundle, rows))


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
    assert bundle.catalog_numbers is not None and bundle.catalog_categories is not None
    # The item columns were placed at load; copy the rows to rank and fill in the rest.
    numbers = bundle.catalog_numbers[index]
    categories = bundle.catalog_categories[index]
    user_side = dict(values)
    for table in bundle.pairs:
        user_side |= table.values(None if cold_start else user_id, index)
    for i, name in enumerate(bundle.numbers):
        if name in user_side:
            numbers[:, i] = user_side[name]
    for i, name in enumerate(bundle.categories):
        if name in user_side:
            categories[:, i] = user_side[name]
    scores = bundle.run(bundle.feeds(numbers, categories))
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
