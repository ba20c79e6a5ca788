"""(User, item) features as of a cutoff time, and the training pairs cut from a purchase log.

Everything here is computed from purchases strictly before the cutoff: a feature at time t never
changes when later events are added to the log. The features have fixed names and meanings,
declared below as the card will show them; the service computes nothing, it looks them up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.card import MISSING_CATEGORY, Feature

DAY = pd.Timedelta(days=1)
RECENCY_SCALE_DAYS = 30.0

USER_FEATURES = [
    Feature(
        name="u_orders",
        kind="numeric",
        role="user",
        minimum=0,
        integer=True,
        transform="log1p",
        missing="zero",
        example=6,
        description="Purchase lines of the user before the cutoff (0 for a new user).",
    ),
    Feature(
        name="u_units",
        kind="numeric",
        role="user",
        minimum=0,
        transform="log1p",
        missing="zero",
        example=8,
        description="Units the user bought before the cutoff.",
    ),
    Feature(
        name="u_spend",
        kind="numeric",
        role="user",
        minimum=0,
        transform="log1p",
        missing="zero",
        example=240.0,
        description="Money the user spent before the cutoff.",
    ),
    Feature(
        name="u_distinct_items",
        kind="numeric",
        role="user",
        minimum=0,
        integer=True,
        transform="log1p",
        missing="zero",
        example=5,
        description="Different items the user bought before the cutoff.",
    ),
    Feature(
        name="u_days_since_last",
        kind="numeric",
        role="user",
        minimum=0,
        transform="log1p",
        example=12.5,
        description="Days from the user's last purchase to the cutoff (missing if none).",
    ),
    Feature(
        name="u_avg_price",
        kind="numeric",
        role="user",
        minimum=0,
        transform="log1p",
        example=30.0,
        description="Mean unit price the user paid (missing if no purchase).",
    ),
]
ITEM_FEATURES = [
    Feature(
        name="i_price",
        kind="numeric",
        role="item",
        minimum=0,
        transform="log1p",
        example=35.0,
        description="List price of the item (or the median price paid).",
    ),
    Feature(
        name="i_category",
        kind="categorical",
        role="item",
        example="shoes",
        description="Category of the item.",
    ),
    Feature(
        name="i_sales_7d",
        kind="numeric",
        role="item",
        minimum=0,
        transform="log1p",
        missing="zero",
        example=4,
        description="Units of the item sold in the last 7 days.",
    ),
    Feature(
        name="i_sales_recent",
        kind="numeric",
        role="item",
        minimum=0,
        transform="log1p",
        missing="zero",
        example=15,
        description="Units of the item sold in the recent window (30 days by default).",
    ),
    Feature(
        name="i_sales_all",
        kind="numeric",
        role="item",
        minimum=0,
        transform="log1p",
        missing="zero",
        example=60,
        description="Units of the item sold before the cutoff.",
    ),
    Feature(
        name="i_buyers_recent",
        kind="numeric",
        role="item",
        minimum=0,
        integer=True,
        transform="log1p",
        missing="zero",
        example=10,
        description="Different users who bought the item in the recent window.",
    ),
    Feature(
        name="i_days_on_sale",
        kind="numeric",
        role="item",
        minimum=0,
        transform="log1p",
        missing="zero",
        example=90.0,
        description="Days from the item's first sale to the cutoff (0 if never sold).",
    ),
]
PAIR_FEATURES = [
    Feature(
        name="ui_purchases",
        kind="numeric",
        role="user_item",
        minimum=0,
        integer=True,
        transform="log1p",
        missing="zero",
        example=0,
        description="Times this user bought this item before the cutoff.",
    ),
    Feature(
        name="ui_recency",
        kind="numeric",
        role="user_item",
        minimum=0,
        maximum=1,
        missing="zero",
        example=0.0,
        description="exp(-days since this user last bought this item / 30); 0 if never.",
    ),
    Feature(
        name="ui_category_share",
        kind="numeric",
        role="user_item",
        minimum=0,
        maximum=1,
        missing="zero",
        example=0.25,
        description="Share of the user's units bought in this item's category.",
    ),
]
FEATURES = USER_FEATURES + ITEM_FEATURES + PAIR_FEATURES
ITEM_PAIR_FEATURES = ["ui_purchases", "ui_recency"]  # looked up by (user, item)
CATEGORY_PAIR_FEATURES = ["ui_category_share"]  # looked up by (user, item category)
LABEL = "purchased"


@dataclass(frozen=True)
class Snapshot:
    """Every feature as of one cutoff: by user, by item, by (user, item), by (user, category)."""

    cutoff: pd.Timestamp
    users: pd.DataFrame  # index user
    items: pd.DataFrame  # index item, every catalogue item
    user_items: pd.DataFrame  # index (user, item)
    user_categories: pd.DataFrame  # index (user, category)


def snapshot(
    purchases: pd.DataFrame, items: pd.DataFrame, cutoff: pd.Timestamp, recent_days: int = 30
) -> Snapshot:
    """Features from the purchases strictly before `cutoff`."""
    hist = purchases[purchases["time"] < cutoff].copy()
    price = hist["price"].fillna(hist["item"].map(items.set_index("item")["price"]))
    hist["spend"] = hist["quantity"] * price
    hist["age_days"] = (cutoff - hist["time"]).dt.total_seconds() / DAY.total_seconds()
    category = items.set_index("item")["category"]
    hist["category"] = hist["item"].map(category).fillna(MISSING_CATEGORY)

    by_user = hist.groupby("user")
    users = pd.DataFrame(
        {
            "u_orders": by_user.size().astype(float),
            "u_units": by_user["quantity"].sum().astype(float),
            "u_spend": by_user["spend"].sum(min_count=1),
            "u_distinct_items": by_user["item"].nunique().astype(float),
            "u_days_since_last": by_user["age_days"].min(),
        }
    )
    users["u_avg_price"] = users["u_spend"] / users["u_units"]

    recent = hist[hist["age_days"] <= recent_days]
    week = hist[hist["age_days"] <= 7]
    by_item = hist.groupby("item")
    item_frame = items.set_index("item")
    item_features = pd.DataFrame(
        {
            "i_price": item_frame["price"].astype(float),
            "i_category": item_frame["category"].fillna(MISSING_CATEGORY).astype(object),
            "i_sales_7d": week.groupby("item")["quantity"].sum(),
            "i_sales_recent": recent.groupby("item")["quantity"].sum(),
            "i_sales_all": by_item["quantity"].sum(),
            "i_buyers_recent": recent.groupby("item")["user"].nunique(),
            "i_days_on_sale": by_item["age_days"].max(),
        },
        index=item_frame.index,
    )
    counts = ["i_sales_7d", "i_sales_recent", "i_sales_all", "i_buyers_recent", "i_days_on_sale"]
    item_features[counts] = item_features[counts].fillna(0.0).astype(float)

    by_pair = hist.groupby(["user", "item"])
    user_items = pd.DataFrame(
        {
            "ui_purchases": by_pair.size().astype(float),
            "ui_recency": np.exp(-by_pair["age_days"].min() / RECENCY_SCALE_DAYS),
        }
    )
    units = hist.groupby(["user", "category"])["quantity"].sum()
    user_categories = (units / units.groupby(level="user").transform("sum")).to_frame(
        "ui_category_share"
    )
    return Snapshot(cutoff, users, item_features, user_items, user_categories)


def pair_features(snap: Snapshot, users: np.ndarray, items: np.ndarray) -> pd.DataFrame:
    """Feature rows for (users[k], items[k]) pairs, as the service assembles them: a user without
    history has missing user features, a pair without history the defaults of PAIR_FEATURES."""
    u = pd.Index(users)
    i = pd.Index(items)
    frame = snap.users.reindex(u).reset_index(drop=True)
    item_part = snap.items.reindex(i).reset_index(drop=True)
    frame = pd.concat([frame, item_part], axis=1)
    pairs = snap.user_items.reindex(pd.MultiIndex.from_arrays([users, items]))
    for name in ITEM_PAIR_FEATURES:
        frame[name] = pairs[name].to_numpy()
    cats = snap.items["i_category"].reindex(i).to_numpy()
    shares = snap.user_categories.reindex(pd.MultiIndex.from_arrays([users, cats]))
    frame["ui_category_share"] = shares["ui_category_share"].to_numpy()
    frame[[f.name for f in PAIR_FEATURES]] = frame[[f.name for f in PAIR_FEATURES]].fillna(0.0)
    return frame[[f.name for f in FEATURES]]


def cutoffs_for(purchases: pd.DataFrame, horizon_days: int, count: int) -> list[pd.Timestamp]:
    """`count` cutoffs spaced by the horizon; the last one's window ends at the log's end."""
    end = purchases["time"].max()
    last = (end - horizon_days * DAY).floor("D")
    cuts = [last - k * horizon_days * DAY for k in range(count - 1, -1, -1)]
    start = purchases["time"].min()
    if cuts[0] - start < horizon_days * DAY:
        raise ValueError(
            f"the log spans {(end - start) / DAY:.0f} days: too short for {count} cutoffs "
            f"{horizon_days} days apart with history before the first"
        )
    return cuts


def window_purchases(
    purchases: pd.DataFrame, cutoff: pd.Timestamp, horizon_days: int
) -> pd.DataFrame:
    """Distinct (user, item) bought in (cutoff, cutoff + horizon]."""
    inside = (purchases["time"] >= cutoff) & (purchases["time"] < cutoff + horizon_days * DAY)
    return purchases.loc[inside, ["user", "item"]].drop_duplicates().reset_index(drop=True)


def training_pairs(
    purchases: pd.DataFrame,
    items: pd.DataFrame,
    cutoff: pd.Timestamp,
    horizon_days: int,
    negatives: int,
    recent_days: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Positives bought in the window after `cutoff`, and `negatives` sampled non-purchases per
    positive from the catalogue, with features as of the cutoff and the label."""
    snap = snapshot(purchases, items, cutoff, recent_days)
    positives = window_purchases(purchases, cutoff, horizon_days)
    catalogue = items["item"].to_numpy()
    bought = set(zip(positives["user"], positives["item"], strict=True))
    neg_users = np.repeat(positives["user"].to_numpy(), negatives)
    neg_items = rng.choice(catalogue, size=len(neg_users))
    # Resample the (rare) draws that hit an item the user did buy in the window.
    for _ in range(10):
        clash = np.array(
            [(u, i) in bought for u, i in zip(neg_users, neg_items, strict=True)], dtype=bool
        )
        if not clash.any():
            break
        neg_items[clash] = rng.choice(catalogue, size=int(clash.sum()))
    # dtype=bool: a window without purchases gives an empty mask, which must still be one.
    keep = np.array(
        [(u, i) not in bought for u, i in zip(neg_users, neg_items, strict=True)], dtype=bool
    )
    users = np.concatenate([positives["user"].to_numpy(), neg_users[keep]])
    items_ = np.concatenate([positives["item"].to_numpy(), neg_items[keep]])
    frame = pair_features(snap, users, items_)
    frame[LABEL] = np.concatenate([np.ones(len(positives)), np.zeros(int(keep.sum()))]).astype(
        np.int8
    )
    frame["user"] = users
    frame["item"] = items_
    frame["cutoff"] = cutoff
    return frame
