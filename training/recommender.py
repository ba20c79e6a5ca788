"""A (user, item) purchase-propensity model from a purchase log, evaluated as a ranking over time.

Pairs are cut at several cutoffs; the model trains on the earlier ones and is tested on the last,
both as a classifier of pairs and as a ranking of the whole catalogue for each user who bought in
the last window, beside popularity, recent popularity and the user's own history. The bundle
carries the catalogue and the user and user-item features as of the end of the log, so the
service can rank for a user id alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from app.card import DatasetInfo, ModelCard
from training.bundle import add_pair_table, add_table
from training.config import TrainConfig
from training.errors import TrainingError
from training.events import LogSpec, PurchaseLog
from training.pairs import (
    CATEGORY_PAIR_FEATURES,
    DAY,
    FEATURES,
    ITEM_PAIR_FEATURES,
    LABEL,
    cutoffs_for,
    pair_features,
    snapshot,
    training_pairs,
    window_purchases,
)
from training.ranking import baseline_scores, ranking_metrics
from training.spec import DatasetSpec
from training.train import MODEL, Fitted, Trained, fit_and_evaluate, publish

log = logging.getLogger(__name__)

# The true purchase scores of a synthetic store: (user ids, item ids, cutoff) -> [users, items].
Truth = Callable[[np.ndarray, np.ndarray, pd.Timestamp], np.ndarray]
TRUTH = "true_probabilities"


@dataclass(frozen=True)
class RankingResult:
    metrics: dict[str, dict[str, float]]  # scorer -> metric -> value
    users: int
    cutoff: pd.Timestamp


def pairs_spec(spec: LogSpec) -> DatasetSpec:
    return DatasetSpec(
        name=spec.name,
        description=spec.description,
        source=spec.source,
        label=LABEL,
        features=FEATURES,
    )


def build_pairs(
    plog: PurchaseLog, spec: LogSpec, seed: int
) -> tuple[pd.DataFrame, list[pd.Timestamp]]:
    """Training pairs stacked over every cutoff, each with its cutoff."""
    w = spec.windows
    try:
        cutoffs = cutoffs_for(plog.purchases, w.horizon_days, w.cutoffs)
    except ValueError as exc:
        raise TrainingError(f"log {plog.file}: {exc}") from None
    rng = np.random.default_rng(seed)
    frames = []
    for cutoff in cutoffs:
        frame = training_pairs(
            plog.purchases, plog.items, cutoff, w.horizon_days, w.negatives, w.recent_days, rng
        )
        log.info(
            "cutoff %s: %d pairs, %d purchases by %d users",
            cutoff.date(),
            len(frame),
            int(frame[LABEL].sum()),
            frame.loc[frame[LABEL] == 1, "user"].nunique(),
        )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), cutoffs


def score_catalogue(
    fitted: Fitted,
    plog: PurchaseLog,
    spec: LogSpec,
    cutoff: pd.Timestamp,
    users: np.ndarray,
    items: np.ndarray,
    chunk: int = 200,
) -> np.ndarray:
    """[users, items] model scores with features as of the cutoff, a chunk of users at a time."""
    snap = snapshot(plog.purchases, plog.items, cutoff, spec.windows.recent_days)
    out = np.empty((len(users), len(items)))
    for start in range(0, len(users), chunk):
        part = users[start : start + chunk]
        frame = pair_features(snap, np.repeat(part, len(items)), np.tile(items, len(part)))
        out[start : start + len(part)] = fitted.predict(frame).reshape(len(part), len(items))
    return out


def evaluate_ranking(
    fitted: Fitted, plog: PurchaseLog, spec: LogSpec, cutoff: pd.Timestamp, truth: Truth | None
) -> RankingResult:
    """Rank the whole catalogue for every user who bought in the window after the cutoff."""
    window = window_purchases(plog.purchases, cutoff, spec.windows.horizon_days)
    users = np.array(sorted(window["user"].unique()), dtype=object)
    items = plog.items["item"].to_numpy(dtype=object)
    relevant = np.zeros((len(users), len(items)), dtype=bool)
    u_pos = {u: k for k, u in enumerate(users)}
    i_pos = {i: k for k, i in enumerate(items)}
    for u, i in zip(window["user"], window["item"], strict=True):
        relevant[u_pos[u], i_pos[i]] = True
    snap = snapshot(plog.purchases, plog.items, cutoff, spec.windows.recent_days)
    scores = {MODEL: score_catalogue(fitted, plog, spec, cutoff, users, items)}
    scores |= baseline_scores(snap, users, items)
    if truth is not None:
        scores[TRUTH] = truth(users, items, cutoff)
    metrics = {name: ranking_metrics(s, relevant) for name, s in scores.items()}
    return RankingResult(metrics, len(users), cutoff)


def time_split(
    pairs: pd.DataFrame, cutoffs: list[pd.Timestamp], config: TrainConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Test on the last cutoff; validation is a stratified share of the earlier ones."""
    test = np.flatnonzero(pairs["cutoff"] == cutoffs[-1])
    earlier = np.flatnonzero(pairs["cutoff"] < cutoffs[-1])
    train, val = train_test_split(
        earlier,
        test_size=config.validation_fraction,
        stratify=pairs[LABEL].to_numpy()[earlier],
        random_state=config.seed,
    )
    return np.sort(train), np.sort(val), test


def train_recommender(
    plog: PurchaseLog,
    spec: LogSpec,
    config: TrainConfig,
    out_dir: Path,
    *,
    name: str | None = None,
    version: str | None = None,
    truth: Truth | None = None,
) -> Trained:
    """Pairs -> network and baselines -> time-ordered evaluation -> bundle with its tables."""
    started = time.perf_counter()
    pairs, cutoffs = build_pairs(plog, spec, config.seed)
    dataset_spec = pairs_spec(spec)
    X = pairs[[f.name for f in FEATURES]]
    y = pairs[LABEL].to_numpy(dtype=np.int8)
    split = time_split(pairs, cutoffs, config)
    log.info(
        "fitting on %d pairs from %d cutoffs (validation %d); testing on %d pairs after %s",
        len(split[0]),
        len(cutoffs) - 1,
        len(split[1]),
        len(split[2]),
        cutoffs[-1].date(),
    )
    fitted, evaluation = fit_and_evaluate(X, y, split, dataset_spec, config)
    ranking = evaluate_ranking(fitted, plog, spec, cutoffs[-1], truth)
    for scorer, m in ranking.metrics.items():
        log.info("ranking %s: %s", scorer, "  ".join(f"{k}={v:.4f}" for k, v in m.items()))

    w = spec.windows
    extra = {
        "split": f"time-ordered: {len(split[0])} train and {len(split[1])} validation pairs "
        f"from cutoffs {', '.join(str(c.date()) for c in cutoffs[:-1])}; {len(split[2])} test "
        f"pairs after {cutoffs[-1].date()} (horizon {w.horizon_days} days, {w.negatives} "
        f"sampled negatives per purchase, seed {config.seed})",
        "cleaning": plog.report.lines(),
        "ranking": {
            "cutoff": str(cutoffs[-1].date()),
            "users": ranking.users,
            "catalogue": len(plog.items),
            "metrics": ranking.metrics,
        },
    }
    dataset = DatasetInfo(
        name=spec.name,
        file=plog.file,
        sha256=plog.sha256,
        rows=len(y),
        positives=int(y.sum()),
        label=LABEL,
        source=spec.source,
    )
    card = publish(
        fitted,
        evaluation,
        dataset_spec,
        config,
        out_dir,
        X.iloc[split[2]].reset_index(drop=True),
        dataset,
        extra,
        started=started,
        name=name,
        version=version,
        ranking_metrics=ranking.metrics,
    )
    card = attach_snapshot(out_dir, plog, spec)
    return Trained(card, fitted)


def attach_snapshot(out_dir: Path, plog: PurchaseLog, spec: LogSpec) -> ModelCard:
    """The catalogue, user features and user-item features as of the end of the log."""
    end = plog.purchases["time"].max() + 1e-3 * DAY
    snap = snapshot(plog.purchases, plog.items, end, spec.windows.recent_days)
    add_table(out_dir, "catalog", snap.items.rename_axis("item_id").reset_index(), "item_id")
    add_table(out_dir, "users", snap.users.rename_axis("user_id").reset_index(), "user_id")
    add_pair_table(
        out_dir,
        "user_items.csv",
        snap.user_items.reset_index(),
        user_key="user",
        key="item",
        match="item",
        features=ITEM_PAIR_FEATURES,
    )
    categories = snap.user_categories.reset_index()
    return add_pair_table(
        out_dir,
        "user_categories.csv",
        categories,
        user_key="user",
        key="category",
        match="i_category",
        features=CATEGORY_PAIR_FEATURES,
    )
