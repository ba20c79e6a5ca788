"""Scoring: validated rows to graph inputs, probabilities, and catalogue rankings."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.bundle import Bundle, graph_value, missing_value
from app.card import MISSING_CATEGORY, FeatureRole
from app.errors import ServiceError


def rows_to_feeds(bundle: Bundle, rows: list[Any]) -> dict[str, np.ndarray]:
    """The packed graph inputs for validated row models: one float32 block, one object block.

    This runs on every /predict request: each row's fields are picked in one C-level call
    (itemgetter on the model's __dict__), each block is made by one numpy call, and numpy turns
    None into NaN by itself.
    """
    n = len(rows)
    pick_numbers, pick_categories = bundle.pickers
    numbers = np.array([pick_numbers(r.__dict__) for r in rows], dtype=np.float32).reshape(
        n, len(bundle.numbers)
    )
    # Requests carry validated, stripped strings (integer codes already as their digits);
    # None and "" are missing. For a few rows a comprehension is cheaper than two masks over an
    # object array; for many, the masks are.
    if n <= 16:
        categories = np.array(
            [
                [
                    MISSING_CATEGORY if v is None or v == "" else v
                    for v in pick_categories(r.__dict__)
                ]
                for r in rows
            ],
            dtype=object,
        ).reshape(n, len(bundle.categories))
    else:
        categories = np.array([pick_categories(r.__dict__) for r in rows], dtype=object).reshape(
            n, len(bundle.categories)
        )
        categories[(categories == None) | (categories == "")] = MISSING_CATEGORY  # noqa: E711
    return bundle.feeds(numbers, categories)


def columns_to_feeds(bundle: Bundle, columns: Any) -> dict[str, np.ndarray]:
    """The packed graph inputs for a validated columns model (one list per feature, or None
    for a feature left out): one numpy call per block instead of a Python step per value."""
    n, given = len(columns), columns.__dict__
    left_out: list[Any] = [None] * n
    numbers = np.array(
        [left_out if given[name] is None else given[name] for name in bundle.numbers],
        dtype=np.float32,  # None becomes NaN
    ).reshape(len(bundle.numbers), n)
    categories = np.array(
        [left_out if given[name] is None else given[name] for name in bundle.categories],
        dtype=object,
    ).reshape(len(bundle.categories), n)
    categories[(categories == None) | (categories == "")] = MISSING_CATEGORY  # noqa: E711
    return bundle.feeds(np.ascontiguousarray(numbers.T), np.ascontiguousarray(categories.T))


def predict(bundle: Bundle, rows: list[Any] | None = None, columns: Any = None) -> np.ndarray:
    """Purchase probability per row, in request order, from rows or from columns."""
    feeds = rows_to_feeds(bundle, rows) if rows is not None else columns_to_feeds(bundle, columns)
    probabilities = bundle.run(feeds)
    # One reduction instead of isfinite + all: a NaN or infinity anywhere makes the sum one
    # (probabilities cannot add up to an overflow).
    if not math.isfinite(probabilities.sum()):
        _refuse_unscorable(probabilities)
    return probabilities


def _refuse_unscorable(scores: np.ndarray) -> None:
    """Values far outside what the model was trained on can overflow to NaN: say so, rather
    than answer a probability that is not one."""
    bad = np.flatnonzero(~np.isfinite(scores))
    details = [
        {
            "field": f"rows[{i}]",
            "problem": "the model cannot score these values (they "
            "overflow inside it); they are far outside what it was trained on",
            "row": int(i),
        }
        for i in bad[:100]
    ]
    raise ServiceError(
        422,
        "unscorable",
        f"{len(bad)} rows cannot be scored: {', '.join(f'row {i}' for i in bad[:5])}"
        + (" ..." if len(bad) > 5 else ""),
        details,
    )


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
    who = None if cold_start else user_id
    if bundle.encoded is not None:
        scores = score_encoded(bundle, index, values, who)
    else:
        scores = score_full(bundle, index, values, who)
    if not np.isfinite(scores).all():
        raise ServiceError(
            422,
            "unscorable",
            "the model cannot score this user's features against the catalogue (they overflow "
            "inside it); they are far outside what it was trained on",
            [{"field": "features", "problem": "values far outside the training data"}],
        )
    top = _top_k(scores, k)
    return Ranking(
        item_ids=[str(catalog.ids[index[i]]) for i in top],
        scores=[float(scores[i]) for i in top],
        cold_start=cold_start,
        unknown_candidates=unknown,
        scored=n,
    )


def _fill(
    bundle: Bundle, numbers: np.ndarray, categories: np.ndarray, columns: dict[str, Any]
) -> None:
    """Set whole columns of packed blocks by feature name (a value, or one per row)."""
    for i, name in enumerate(bundle.numbers):
        if name in columns:
            numbers[:, i] = columns[name]
    for i, name in enumerate(bundle.categories):
        if name in columns:
            categories[:, i] = columns[name]


def score_full(
    bundle: Bundle, index: np.ndarray, values: dict[str, object], user_id: str | None
) -> np.ndarray:
    """The whole graph on every candidate: their item columns (placed at load) and the user's."""
    assert bundle.catalog_numbers is not None and bundle.catalog_categories is not None
    numbers = bundle.catalog_numbers[index]
    categories = bundle.catalog_categories[index]
    columns: dict[str, Any] = dict(values)
    for table in bundle.pairs:
        columns |= table.values(user_id, index)
    _fill(bundle, numbers, categories, columns)
    return bundle.run(bundle.feeds(numbers, categories))


def score_encoded(
    bundle: Bundle, index: np.ndarray, values: dict[str, object], user_id: str | None
) -> np.ndarray:
    """The same scores, with the catalogue encoded once at load: only the user's columns go
    through preprocessing (one probe row per distinct user-item entry), then the network alone
    runs on every candidate."""
    encoded = bundle.encoded
    assert encoded is not None
    assert bundle.catalog_numbers is not None and bundle.catalog_categories is not None
    lookups = [(table, *table.lookup(user_id, index)) for table in bundle.pairs]
    rows = max([1, *(len(next(iter(d.values()))) for _, _, d in lookups)])
    numbers = np.repeat(bundle.catalog_numbers[:1], rows, axis=0)
    categories = np.repeat(bundle.catalog_categories[:1], rows, axis=0)
    probe: dict[str, Any] = dict(values)
    for _, _, distinct in lookups:
        probe |= {name: np.resize(v, rows) for name, v in distinct.items()}
    _fill(bundle, numbers, categories, probe)
    probed = bundle.encode(bundle.feeds(numbers, categories))
    matrix = encoded.items[index]
    matrix[:, encoded.constant] = probed[0, encoded.constant]
    for table, row, _ in lookups:
        cols = np.concatenate([encoded.per_item[name] for name in table.info.features])
        matrix[:, cols] = probed[np.ix_(row, cols)]
    (out,) = encoded.network.run(None, {"encoded": matrix})
    return np.asarray(out).reshape(-1)


def check_encoding(bundle: Bundle, users: int = 3) -> float:
    """Max |encoded ranking - whole graph| over the catalogue for a few users and a new one."""
    if bundle.encoded is None or bundle.catalog is None:
        return 0.0
    index = np.arange(len(bundle.catalog))
    ids: list[str | None] = [None]
    if bundle.users is not None:
        ids += [str(u) for u in bundle.users.ids[:users]]
    worst = 0.0
    for user_id in ids:
        values, cold = _user_values(bundle, user_id, None)
        who = None if cold else user_id
        fast = score_encoded(bundle, index, values, who)
        full = score_full(bundle, index, values, who)
        worst = max(worst, float(np.abs(fast - full).max()))
    return worst


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
