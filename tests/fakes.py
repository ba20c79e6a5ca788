"""Hand-written fakes for route tests: a card, a model with a known formula, and a registry."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from app.bundle import Bundle, Table, catalog_blocks
from app.card import (
    CARD_FILE,
    CATEGORIES_INPUT,
    NUMBERS_INPUT,
    DatasetInfo,
    Feature,
    ModelCard,
    TableInfo,
    packed_columns,
)
from app.registry import Registry

FEATURES = [
    Feature(
        name="views",
        kind="numeric",
        description="Product pages viewed.",
        minimum=0,
        integer=True,
        example=3,
    ),
    Feature(
        name="seconds",
        kind="numeric",
        description="Session length.",
        minimum=0,
        maximum=86_400,
        example=120.5,
    ),
    Feature(
        name="browser",
        kind="categorical",
        codes=True,
        description="Browser code.",
        values=["1", "2", "3"],
        example="2",
    ),
    Feature(
        name="device",
        kind="categorical",
        role="user",
        description="Device.",
        values=["mobile", "desktop"],
        example="mobile",
        required=True,
    ),
    Feature(
        name="returning", kind="boolean", role="user", description="Seen before.", example=True
    ),
    Feature(
        name="price",
        kind="numeric",
        role="item",
        description="Item price.",
        minimum=0,
        example=20.0,
    ),
    Feature(
        name="category",
        kind="categorical",
        role="item",
        description="Item category.",
        example="shoes",
    ),
]
SHA = "0" * 64


def make_card(
    name: str = "fake", *, catalog: bool = True, users: bool = True, threshold: float = 0.5
) -> ModelCard:
    return ModelCard(
        name=name,
        version="v1",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        dataset=DatasetInfo(
            name="fake", file="fake.csv", sha256=SHA, rows=10, positives=5, label="bought"
        ),
        features=FEATURES,
        threshold=threshold,
        metrics={"roc_auc": 0.8},
        seed=0,
        model_sha256=SHA,
        catalog=TableInfo(file="catalog.csv", key="item_id", rows=4, sha256=SHA)
        if catalog
        else None,
        users=TableInfo(file="users.csv", key="user_id", rows=1, sha256=SHA) if users else None,
    )


def write_card(models_dir: Path, card: ModelCard) -> None:
    path = models_dir / card.name
    path.mkdir(parents=True, exist_ok=True)
    (path / CARD_FILE).write_text(card.model_dump_json())


def fake_score(views: float, price: float, device: str) -> float:
    """The fake model's formula: more views and cheaper items buy more; desktop a bit more.

    Like a real network fed values far outside its training data, it overflows (to NaN) past
    a trillion views."""
    if views > 1e12:
        return math.nan
    views = 0.0 if math.isnan(views) else views
    price = 0.0 if math.isnan(price) else price
    z = 0.3 * views - 0.05 * price + (0.5 if device == "desktop" else 0.0) - 1.0
    return 1.0 / (1.0 + math.exp(-z))


CATALOG = Table(
    ids=np.array(["a", "b", "c", "d"], dtype=object),
    index={"a": 0, "b": 1, "c": 2, "d": 3},
    columns={
        "price": np.array([10.0, 40.0, 5.0, 25.0], dtype=np.float32),
        "category": np.array(["shoes", "hats", "shoes", "bags"], dtype=object),
    },
)
USERS = Table(
    ids=np.array(["u1"], dtype=object),
    index={"u1": 0},
    columns={
        "device": np.array(["desktop"], dtype=object),
        "returning": np.array([1.0], dtype=np.float32),
    },
)


@dataclass(frozen=True)
class FakeBundle(Bundle):
    """A bundle whose model is `fake_score`, recording every feed it was given (unpacked)."""

    calls: list[dict[str, np.ndarray]] = field(default_factory=list)
    threads: list[str] = field(default_factory=list)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        numbers, categories = feeds[NUMBERS_INPUT], feeds[CATEGORIES_INPUT]
        n = len(numbers)
        assert numbers.shape == (n, len(self.numbers)) and numbers.dtype == np.float32
        assert categories.shape == (n, len(self.categories)) and categories.dtype == object
        columns = {name: numbers[:, [i]] for i, name in enumerate(self.numbers)}
        columns |= {name: categories[:, [i]] for i, name in enumerate(self.categories)}
        self.calls.append(columns)
        self.threads.append(threading.current_thread().name)
        return np.array(
            [
                fake_score(
                    float(columns["views"][i, 0]),
                    float(columns["price"][i, 0]),
                    str(columns["device"][i, 0]),
                )
                for i in range(n)
            ],
            dtype=np.float32,
        )


def fake_bundle(card: ModelCard) -> FakeBundle:
    numbers, categories = packed_columns(card.features)
    catalog = CATALOG if card.catalog else None
    blocks = catalog_blocks(card, catalog) if catalog is not None else (None, None)
    return FakeBundle(
        name=card.name,
        path=Path("/nowhere"),
        card=card,
        session=None,  # type: ignore[arg-type]
        catalog=catalog,
        users=USERS if card.users else None,
        numbers=tuple(numbers),
        categories=tuple(categories),
        catalog_numbers=blocks[0],
        catalog_categories=blocks[1],
    )


class FakeRegistry(Registry):
    """The real registry's discovery and rules, with fake bundles instead of ONNX sessions."""

    def load(self) -> None:
        self.bundles = {name: fake_bundle(card) for name, (_, card) in self.cards.items()}
        self.loaded = True

    def last_call(self, name: str = "fake") -> dict[str, Any]:
        bundle = self.bundles[name]
        assert isinstance(bundle, FakeBundle)
        return bundle.calls[-1]


def break_scoring(monkeypatch: Any) -> None:
    """Make scoring.predict raise a bug (a RuntimeError "a bug"), whatever it is called with."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr("app.scoring.predict", broken)
