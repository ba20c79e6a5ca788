"""A seeded generator of storefront sessions whose purchase probability is known for every row."""

from __future__ import annotations

import numpy as np
import pandas as pd

DEVICES = ("desktop", "mobile", "tablet")
SOURCES = ("direct", "search", "social", "email", "ads")
_DEVICE_EFFECT = {"desktop": 0.35, "mobile": -0.25, "tablet": 0.0}
_SOURCE_EFFECT = {"direct": 0.2, "search": 0.3, "social": -0.6, "email": 0.7, "ads": -0.2}
TRUE_PROBABILITY = "true_probability"
LABEL = "purchased"


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def generate_sessions(rows: int, seed: int = 0, missing_rate: float = 0.02) -> pd.DataFrame:
    """Sessions with counts, durations, flags and categories; `purchased` is drawn from
    `true_probability`, a known function of the columns as they appear in the table.

    Missing values are part of the table: the probability of a row with a missing duration is
    computed at the median duration, and a missing device has no effect of its own, so a model
    that imputes them can in principle reach the AUC of the true probabilities.
    """
    if rows < 1:
        raise ValueError("rows must be positive")
    rng = np.random.default_rng(seed)
    returning = rng.random(rows) < 0.55
    device = rng.choice(DEVICES, size=rows, p=[0.45, 0.45, 0.10]).astype(object)
    source = rng.choice(SOURCES, size=rows, p=[0.25, 0.35, 0.15, 0.10, 0.15]).astype(object)
    engagement = rng.gamma(2.0, 1.0, size=rows) * np.where(returning, 1.3, 1.0)
    product_views = rng.poisson(2.0 + 4.0 * engagement)
    seconds = np.round(
        product_views * rng.lognormal(3.6, 0.6, size=rows) + rng.exponential(20.0, rows), 1
    )
    cart_adds = rng.binomial(np.minimum(product_views, 20), np.clip(0.04 * engagement, 0, 0.6))
    discount_seen = rng.random(rows) < 0.3

    seconds_missing = rng.random(rows) < missing_rate
    device_missing = rng.random(rows) < missing_rate
    seconds_observed = np.where(seconds_missing, np.nan, seconds)
    seconds_for_p = np.where(seconds_missing, np.nanmedian(seconds_observed), seconds)
    device_observed = device.copy()
    device_observed[device_missing] = None

    logit = (
        -5.2
        + 0.55 * np.log1p(product_views)
        + 0.35 * np.log1p(seconds_for_p / 60.0)
        + 1.1 * np.log1p(cart_adds)
        + 0.5 * returning
        + 0.4 * discount_seen * (cart_adds > 0)  # a discount matters once something is in the cart
        + np.array([0.0 if d is None else _DEVICE_EFFECT[d] for d in device_observed])
        + np.array([_SOURCE_EFFECT[s] for s in source])
    )
    p = _sigmoid(logit)
    purchased = rng.random(rows) < p
    return pd.DataFrame(
        {
            "session_id": np.arange(1, rows + 1),
            "product_views": product_views,
            "session_seconds": seconds_observed,
            "cart_adds": cart_adds,
            "returning_visitor": returning,
            "discount_seen": discount_seen,
            "device": device_observed,
            "traffic_source": source,
            LABEL: purchased,
            TRUE_PROBABILITY: p,
        }
    )
