"""Ranking over the whole catalogue per user: metrics at k, and the baselines a model must beat."""

from __future__ import annotations

import numpy as np

from training.pairs import Snapshot

RANKING_METRICS = ("hit_rate@10", "ndcg@10", "recall@10", "mrr")


def rank_order(scores: np.ndarray) -> np.ndarray:
    """Item positions best first per row; ties keep catalogue order, so baselines are stable."""
    return np.argsort(-scores, axis=1, kind="stable")


def ranking_metrics(scores: np.ndarray, relevant: np.ndarray, k: int = 10) -> dict[str, float]:
    """HitRate@k, NDCG@k, Recall@k and MRR for scores and relevance, both [users, items].

    Every user must have at least one relevant item; relevance is binary.
    """
    if scores.shape != relevant.shape:
        raise ValueError("scores and relevance must have the same shape")
    n_relevant = relevant.sum(axis=1)
    if (n_relevant == 0).any():
        raise ValueError("every user needs at least one relevant item")
    order = rank_order(scores)
    rows = np.arange(len(scores))[:, None]
    hits = relevant[rows, order[:, :k]]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discounts).sum(axis=1)
    ideal = np.array([discounts[: min(n, k)].sum() for n in n_relevant])
    ranked_relevance = relevant[rows, order]
    first = ranked_relevance.argmax(axis=1)  # position of the first relevant item
    return {
        f"hit_rate@{k}": float(hits.any(axis=1).mean()),
        f"ndcg@{k}": float((dcg / ideal).mean()),
        f"recall@{k}": float((hits.sum(axis=1) / n_relevant).mean()),
        "mrr": float((1.0 / (first + 1)).mean()),
    }


def baseline_scores(snap: Snapshot, users: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
    """[users, items] scores of the obvious rankings, from the same snapshot the model sees."""
    item_frame = snap.items.reindex(items)
    popularity = item_frame["i_sales_all"].to_numpy(float)
    recent = item_frame["i_sales_recent"].to_numpy(float)
    history = np.zeros((len(users), len(items)))
    bought = snap.user_items["ui_purchases"].reset_index()
    rows = bought.iloc[:, 0].map({u: k for k, u in enumerate(users)})
    cols = bought.iloc[:, 1].map({i: k for k, i in enumerate(items)})
    known = rows.notna() & cols.notna()
    history[rows[known].astype(int), cols[known].astype(int)] = bought.loc[known, "ui_purchases"]
    # The user's own purchases first (most bought first), then everything else by popularity.
    scale = popularity.max() + 1.0
    return {
        "popularity": np.broadcast_to(popularity, (len(users), len(items))).copy(),
        "recent_popularity": np.broadcast_to(recent, (len(users), len(items))).copy(),
        "history_then_popularity": history * scale + popularity[None, :],
    }
