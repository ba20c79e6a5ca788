"""(User, item) features as of a cutoff, training pairs, and ranking metrics worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from app.card import MISSING_CATEGORY
from training.pairs import FEATURES, LABEL, pair_features, snapshot, training_pairs
from training.ranking import baseline_scores, ranking_metrics

T0 = pd.Timestamp("2026-03-01", tz="UTC")


def _purchases(rows: list[tuple[str, str, float, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": [r[0] for r in rows],
            "item": [r[1] for r in rows],
            "time": [T0 + pd.Timedelta(days=r[2]) for r in rows],
            "quantity": [r[3] for r in rows],
            "price": [r[4] for r in rows],
        }
    )


ITEMS = pd.DataFrame(
    {"item": ["a", "b", "c"], "category": ["shoes", "shoes", None], "price": [10.0, 20.0, 5.0]}
)
LOG = _purchases(
    [
        ("u1", "a", 0, 1, 10.0),
        ("u1", "a", 5, 2, 9.0),
        ("u1", "c", 6, 1, np.nan),
        ("u2", "b", 8, 1, 20.0),
        ("u3", "a", 12, 1, 10.0),  # after the cutoff below
    ]
)
CUTOFF = T0 + pd.Timedelta(days=10)


def test_features_at_a_cutoff_use_only_earlier_purchases() -> None:
    snap = snapshot(LOG, ITEMS, CUTOFF)
    u1 = snap.users.loc["u1"]
    assert u1["u_orders"] == 3
    assert u1["u_units"] == 4
    assert u1["u_spend"] == pytest.approx(10 + 18 + 5)  # the missing price is the list price
    assert u1["u_days_since_last"] == pytest.approx(4.0)
    assert "u3" not in snap.users.index
    assert snap.items.loc["a", "i_sales_all"] == 3
    assert snap.items.loc["a", "i_sales_7d"] == 2
    assert snap.items.loc["c", "i_category"] == MISSING_CATEGORY
    assert snap.user_items.loc[("u1", "a"), "ui_purchases"] == 2
    assert snap.user_items.loc[("u1", "a"), "ui_recency"] == pytest.approx(math.exp(-5 / 30))
    assert snap.user_categories.loc[("u1", "shoes"), "ui_category_share"] == pytest.approx(3 / 4)


def test_no_leakage_later_events_do_not_change_earlier_features() -> None:
    later = pd.concat(
        [LOG, _purchases([("u1", "b", 10.5, 5, 20.0), ("u9", "c", 30, 1, 5.0)])],
        ignore_index=True,
    )
    before, after = snapshot(LOG, ITEMS, CUTOFF), snapshot(later, ITEMS, CUTOFF)
    pd.testing.assert_frame_equal(before.users, after.users)
    pd.testing.assert_frame_equal(before.items, after.items)
    pd.testing.assert_frame_equal(before.user_items, after.user_items)
    pd.testing.assert_frame_equal(before.user_categories, after.user_categories)
    users, items = np.array(["u1", "u2", "u9"] * 3), np.repeat(["a", "b", "c"], 3)
    pd.testing.assert_frame_equal(
        pair_features(before, users, items), pair_features(after, users, items)
    )


def test_pairs_without_history_take_the_defaults_and_new_users_are_missing() -> None:
    snap = snapshot(LOG, ITEMS, CUTOFF)
    rows = pair_features(snap, np.array(["u2", "new"]), np.array(["a", "a"]))
    assert list(rows.columns) == [f.name for f in FEATURES]
    assert rows.loc[0, "ui_purchases"] == 0.0
    assert rows.loc[0, "ui_category_share"] == 1.0  # u2 bought only shoes
    assert rows.loc[1, ["ui_purchases", "ui_recency", "ui_category_share"]].tolist() == [0, 0, 0]
    assert rows.loc[1, ["u_orders", "u_days_since_last"]].isna().all()


def test_training_pairs_label_window_purchases_and_sample_non_purchases() -> None:
    rng = np.random.default_rng(0)
    frame = training_pairs(LOG, ITEMS, CUTOFF, horizon_days=7, negatives=2, recent_days=30, rng=rng)
    positives = frame[frame[LABEL] == 1]
    assert list(zip(positives["user"], positives["item"], strict=True)) == [("u3", "a")]
    negatives = frame[frame[LABEL] == 0]
    assert len(negatives) == 2
    assert (negatives["user"] == "u3").all()
    assert (negatives["item"] != "a").all()  # never an item the user bought in the window


def test_a_window_without_purchases_gives_no_pairs_not_an_error() -> None:
    """A store closed for two weeks: the cutoff before the gap adds nothing."""
    rng = np.random.default_rng(0)
    quiet = T0 + pd.Timedelta(days=13)  # nothing bought in the 7 days after it
    frame = training_pairs(LOG, ITEMS, quiet, horizon_days=7, negatives=2, recent_days=30, rng=rng)
    assert len(frame) == 0
    assert {*(f.name for f in FEATURES), LABEL, "user", "item"} <= set(frame.columns)


def test_ranking_metrics_by_hand() -> None:
    scores = np.array([[0.9, 0.8, 0.1, 0.2], [0.1, 0.2, 0.3, 0.4]])
    relevant = np.array([[False, True, False, False], [True, False, False, True]])
    m = ranking_metrics(scores, relevant, k=2)
    assert m["hit_rate@2"] == 1.0
    assert m["recall@2"] == pytest.approx((1 + 0.5) / 2)
    # user 0: hit at rank 2 -> 1/log2(3); ideal 1.  user 1: hit at rank 1 -> 1; ideal 1 + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / (1 + 1 / math.log2(3))) / 2
    assert m["ndcg@2"] == pytest.approx(expected)
    assert m["mrr"] == pytest.approx((1 / 2 + 1) / 2)


def test_history_baseline_puts_the_users_own_items_first() -> None:
    snap = snapshot(LOG, ITEMS, CUTOFF)
    scores = baseline_scores(snap, np.array(["u2"]), np.array(["a", "b", "c"]))
    assert np.argmax(scores["history_then_popularity"][0]) == 1  # u2 bought b
    assert np.argmax(scores["popularity"][0]) == 0  # a sold most
