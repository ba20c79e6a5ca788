"""From a synthetic store's purchase log to a bundle the service ranks with, end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from training.config import load_config
from training.events import load_log_spec, load_purchase_log
from training.pairs import DAY, pair_features, snapshot
from training.recommender import TRUTH, train_recommender
from training.storefront import load_truth, write_storefront
from training.train import Trained

BASELINES = ("popularity", "recent_popularity", "history_then_popularity")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trained, Path, object]:
    root = tmp_path_factory.mktemp("store")
    write_storefront(root / "data", users=1500, items=300, days=150, seed=3)
    spec = load_log_spec("storefront")
    plog = load_purchase_log(root / "data" / "purchases.csv", spec, root / "data" / "items.csv")
    trained = train_recommender(
        plog,
        spec,
        load_config(None, {"seed": 3}),
        root / "models" / "shop",
        truth=load_truth(root / "data" / "storefront.json"),
    )
    return trained, root / "models", plog


def test_the_model_ranks_better_than_every_baseline(store) -> None:  # type: ignore[no-untyped-def]
    trained, _, _ = store
    ranking = trained.card.ranking_metrics
    assert ranking is not None
    for metric in ("ndcg@10", "hit_rate@10"):
        for baseline in BASELINES:
            assert ranking["model"][metric] > ranking[baseline][metric], (metric, baseline)
    # The truth is reported beside them, and nothing ranks far above it.
    assert ranking[TRUTH]["ndcg@10"] > ranking["model"]["ndcg@10"] - 0.03


def test_the_bundle_carries_catalogue_users_and_pair_tables(store) -> None:  # type: ignore[no-untyped-def]
    trained, models, plog = store
    card = trained.card
    assert card.catalog is not None and card.catalog.rows == len(plog.items)
    assert card.users is not None and card.users.rows == plog.purchases["user"].nunique()
    assert {p.file for p in card.pairs} == {"user_items.csv", "user_categories.csv"}
    report = (models / "shop" / "report.md").read_text()
    assert "Ranking the whole catalogue" in report
    assert "| history_then_popularity |" in report


def _python_scores(trained: Trained, plog, user: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    end = plog.purchases["time"].max() + 1e-3 * DAY
    snap = snapshot(plog.purchases, plog.items, end)
    items = plog.items["item"].to_numpy(dtype=object)
    frame = pair_features(snap, np.full(len(items), user, dtype=object), items)
    return trained.fitted.predict(frame)


@pytest.mark.parametrize(("user", "cold"), [("C00042", False), ("someone-new", True)])
def test_recommend_by_user_id_matches_the_python_pipeline(store, user: str, cold: bool) -> None:  # type: ignore[no-untyped-def]
    trained, models, plog = store
    n = len(plog.items)
    expected = _python_scores(trained, plog, user)
    settings = Settings(models_dir=models, max_k=n, default_k=10)
    with TestClient(create_app(settings)) as client:
        response = client.post("/recommend", json={"user_id": user, "k": n})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["cold_start"] is cold
    got = {i["item_id"]: i["score"] for i in body["items"]}
    assert len(got) == n
    want = dict(zip(plog.items["item"], expected, strict=True))
    assert max(abs(got[i] - want[i]) for i in want) <= 1e-5
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)


def test_predict_scores_raw_pair_features_too(store) -> None:  # type: ignore[no-untyped-def]
    trained, models, _ = store
    row = {"u_orders": 3, "i_price": 20.0, "i_category": "shoes", "ui_purchases": 1}
    with TestClient(create_app(Settings(models_dir=models))) as client:
        response = client.post("/predict", json={"rows": [row]})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == trained.card.name


def test_shipped_storefront_bundle_was_made_by_the_committed_command(tmp_path: Path) -> None:
    """models/storefront comes from `make train-storefront`: the same generated log (by hash),
    the committed config, and a ranking that beats every baseline."""
    from app.card import ModelCard
    from training.data import file_sha256

    root = Path(__file__).resolve().parents[2]
    card = ModelCard.model_validate_json((root / "models/storefront/card.json").read_text())
    write_storefront(tmp_path, users=2000, items=400, days=180, seed=0)
    assert card.dataset.sha256 == file_sha256(tmp_path / "purchases.csv")
    config = load_config(root / "training/configs/storefront.toml")
    assert card.hyperparameters == config.model_dump(mode="json")
    assert card.ranking_metrics is not None
    for baseline in BASELINES:
        assert card.ranking_metrics["model"]["ndcg@10"] > card.ranking_metrics[baseline]["ndcg@10"]
