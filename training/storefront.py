"""A seeded synthetic storefront: users with tastes, items, and a purchase log from a known model.

Each day every user buys with a probability of their own; what they buy is drawn from a softmax
over items of a utility that tests can recompute: taste for the item's category, the item's
quality and its trend over time, price (weighed by the user's price sensitivity), and a bonus
for items they bought before (consumables are bought again). The export looks like a real one:
store column names, ISO timestamps, views and cart events, returns as negative quantities,
duplicate lines, a few lines without a customer or with a zero price, items missing from the item
table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.errors import TrainingError

CATEGORIES = ("shoes", "shirts", "trousers", "bags", "hats", "socks", "jackets", "accessories")
EXPORT_COLUMNS = {
    "user": "customer_id",
    "item": "sku",
    "timestamp": "ordered_at",
    "quantity": "qty",
    "price": "unit_price",
    "event": "event_type",
}


@dataclass(frozen=True)
class Storefront:
    """The latent state of a synthetic store; `utility` is the model purchases are drawn from."""

    start: pd.Timestamp
    days: int
    user_ids: np.ndarray
    item_ids: np.ndarray
    taste: np.ndarray  # [users, categories], rows sum to 1
    price_sensitivity: np.ndarray  # [users]
    activity: np.ndarray  # [users], purchase probability per day
    item_category: np.ndarray  # [items], index into CATEGORIES
    item_price: np.ndarray  # [items]
    quality: np.ndarray  # [items]
    trend: np.ndarray  # [items], change of quality over the whole period
    repeat: np.ndarray  # [items], bonus per log1p(times bought before)

    def utility(self, users: np.ndarray, day: float, bought: np.ndarray) -> np.ndarray:
        """[len(users), items] utilities on `day` given counts bought so far [len(users), items]."""
        taste = np.log(self.taste[users][:, self.item_category] + 1e-3)
        price = self.price_sensitivity[users, None] * np.log(self.item_price)[None, :]
        quality = (self.quality + self.trend * (day / self.days))[None, :]
        return taste + quality - price + self.repeat[None, :] * np.log1p(bought)

    def choice_probabilities(self, users: np.ndarray, day: float, bought: np.ndarray) -> np.ndarray:
        """The probability that a user's next purchase is each item: the truth a ranking chases."""
        u = self.utility(users, day, bought)
        u -= u.max(axis=1, keepdims=True)
        e = np.exp(u)
        return e / e.sum(axis=1, keepdims=True)

    def day_of(self, when: pd.Timestamp) -> float:
        return (when - self.start) / pd.Timedelta(days=1)


def build_storefront(users: int, items: int, days: int, seed: int) -> Storefront:
    rng = np.random.default_rng(seed)
    n_cat = len(CATEGORIES)
    base_price = np.array([80, 30, 50, 70, 25, 8, 120, 20], dtype=float)
    category = rng.integers(0, n_cat, items)
    return Storefront(
        start=pd.Timestamp("2026-01-01", tz="UTC"),
        days=days,
        user_ids=np.array([f"C{u:05d}" for u in range(users)], dtype=object),
        item_ids=np.array([f"SKU-{i:04d}" for i in range(items)], dtype=object),
        taste=rng.dirichlet(np.full(n_cat, 0.4), users),
        price_sensitivity=rng.gamma(4.0, 0.25, users),
        activity=np.clip(rng.gamma(1.5, 0.03, users), 0.002, 0.4),
        item_category=category,
        item_price=np.round(base_price[category] * rng.lognormal(0.0, 0.35, items), 2),
        quality=rng.normal(0.0, 1.0, items),
        trend=rng.normal(0.0, 1.2, items),
        repeat=np.where(rng.random(items) < 0.25, rng.uniform(1.0, 2.5, items), 0.0),
    )


def simulate(store: Storefront, seed: int) -> pd.DataFrame:
    """Clean purchases: user index, item index, day (float), quantity, unit price."""
    rng = np.random.default_rng(seed)
    n_users, n_items = len(store.user_ids), len(store.item_ids)
    bought = np.zeros((n_users, n_items), dtype=np.float64)
    rows = []
    for day in range(store.days):
        active = np.flatnonzero(rng.random(n_users) < store.activity)
        if len(active) == 0:
            continue
        u = store.utility(active, day, bought[active])
        choice = np.argmax(u + rng.gumbel(size=u.shape), axis=1)  # a softmax draw per user
        bought[active, choice] += 1
        when = day + rng.random(len(active))
        qty = rng.choice([1, 1, 1, 2, 3], len(active))
        price = np.round(
            store.item_price[choice] * rng.choice([1.0, 1.0, 0.9, 0.8], len(active)), 2
        )
        rows.append(np.column_stack([active, choice, when, qty, price]))
    if not rows:
        raise TrainingError(
            f"the simulated store sold nothing in {store.days} days to {n_users} users: "
            "simulate more users or more days"
        )
    table = np.vstack(rows)
    frame = pd.DataFrame(table, columns=["user", "item", "day", "quantity", "price"])
    return frame.astype({"user": int, "item": int, "quantity": int}).sort_values("day")


def export(
    store: Storefront, purchases: pd.DataFrame, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The log and item table a store would export, with the mess real exports carry."""
    rng = np.random.default_rng(seed + 1)
    log = pd.DataFrame(
        {
            "user": store.user_ids[purchases["user"]],
            "item": store.item_ids[purchases["item"]],
            "day": purchases["day"].to_numpy(),
            "quantity": purchases["quantity"].to_numpy(),
            "price": purchases["price"].to_numpy(),
            "event": "purchase",
        }
    )
    n = len(log)
    views = log.sample(n=n * 2, replace=True, random_state=seed).assign(
        event=lambda f: np.where(rng.random(len(f)) < 0.7, "view", "cart"),
        day=lambda f: np.maximum(f["day"] - rng.random(len(f)), 0),
        quantity=1,
    )
    returns = log.sample(frac=0.02, random_state=seed + 2).assign(
        quantity=lambda f: -f["quantity"], day=lambda f: f["day"] + 3
    )
    duplicates = log.sample(frac=0.01, random_state=seed + 3)
    out = pd.concat([log, views, returns, duplicates], ignore_index=True)
    out.loc[rng.random(len(out)) < 0.005, "user"] = None
    out.loc[(out["event"] == "purchase") & (rng.random(len(out)) < 0.005), "price"] = 0.0
    out = out[out["day"] < store.days].sort_values("day", kind="stable").reset_index(drop=True)
    stamps = store.start + pd.to_timedelta(out["day"], unit="D")
    export_log = pd.DataFrame(
        {
            EXPORT_COLUMNS["user"]: out["user"],
            EXPORT_COLUMNS["item"]: out["item"],
            EXPORT_COLUMNS["timestamp"]: stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            EXPORT_COLUMNS["quantity"]: out["quantity"],
            EXPORT_COLUMNS["price"]: out["price"],
            EXPORT_COLUMNS["event"]: out["event"],
        }
    )
    listed = rng.random(len(store.item_ids)) >= 0.02  # a few items have no row in the item table
    items = pd.DataFrame(
        {
            "sku": store.item_ids[listed],
            "category": np.array(CATEGORIES, dtype=object)[store.item_category[listed]],
            "list_price": store.item_price[listed],
        }
    )
    return export_log, items


def generate_storefront(
    users: int = 2000, items: int = 400, days: int = 180, seed: int = 0
) -> tuple[Storefront, pd.DataFrame, pd.DataFrame]:
    """The store, its exported purchase log and its item table."""
    if min(users, items, days) < 1:
        raise ValueError("users, items and days must be positive")
    store = build_storefront(users, items, days, seed)
    log, table = export(store, simulate(store, seed), seed)
    return store, log, table


def truth_for(
    store: Storefront, seed: int
) -> Callable[[np.ndarray, np.ndarray, pd.Timestamp], np.ndarray]:
    """The true next-purchase probabilities of a generated store, as of any cutoff."""
    purchases = simulate(store, seed)
    user_index = {u: k for k, u in enumerate(store.user_ids)}
    item_index = {i: k for k, i in enumerate(store.item_ids)}

    def truth(users: np.ndarray, items: np.ndarray, cutoff: pd.Timestamp) -> np.ndarray:
        day = store.day_of(cutoff)
        before = purchases[purchases["day"] < day]
        counts = np.zeros((len(store.user_ids), len(store.item_ids)))
        np.add.at(counts, (before["user"].to_numpy(), before["item"].to_numpy()), 1)
        u = np.array([user_index[x] for x in users])
        i = np.array([item_index[x] for x in items])
        return store.choice_probabilities(u, day, counts[u])[:, i]

    return truth


TRUTH_FILE = "storefront.json"


def write_storefront(out_dir: Path, users: int, items: int, days: int, seed: int) -> list[Path]:
    """purchases.csv and items.csv as a store exports them, and the parameters that made them."""
    _, log, table = generate_storefront(users, items, days, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "purchases.csv", out_dir / "items.csv", out_dir / TRUTH_FILE]
    log.to_csv(paths[0], index=False)
    table.to_csv(paths[1], index=False)
    params = {"users": users, "items": items, "days": days, "seed": seed}
    paths[2].write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")
    return paths


def load_truth(path: Path) -> Callable[[np.ndarray, np.ndarray, pd.Timestamp], np.ndarray]:
    """Rebuild a generated store from its parameters and return its true scores."""
    params = json.loads(path.read_text(encoding="utf-8"))
    store = build_storefront(params["users"], params["items"], params["days"], params["seed"])
    return truth_for(store, params["seed"])
