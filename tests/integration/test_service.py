"""The service on real bundles: the shipped one, freshly trained ones, broken ones."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.card import CARD_FILE, MODEL_FILE
from app.main import create_app
from app.settings import Settings
from training.bundle import add_table
from training.config import load_config
from training.data import load_dataset
from training.export import onnx_feeds
from training.spec import DatasetSpec, load_spec
from training.train import Trained, train

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "models"
UCI_CONFIG = ROOT / "training" / "configs" / "uci_online_shoppers.toml"


def _client(models_dir: Path, **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(models_dir=models_dir, **settings)))


# --- the shipped bundle ---------------------------------------------------------------------


def test_shipped_bundle_loads_and_its_documented_example_works() -> None:
    with _client(SHIPPED) as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert "uci_online_shoppers" in ready.json()["models"]
        spec = client.get("/openapi.json").json()
        ref = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
        name = ref["schema"]["$ref"].rsplit("/", 1)[1]
        example = spec["components"]["schemas"][name]["examples"][0]
        response = client.post("/predict", json=example)
        assert response.status_code == 200, response.text
        p = response.json()["predictions"][0]["probability"]
        assert 0.0 < p < 1.0
        card = client.get(f"/models/{response.json()['model']}").json()
        assert card["version"] == response.headers["x-model-version"]


def test_a_missing_category_scores_the_same_however_it_is_sent_and_batched() -> None:
    """Absent, null, "" and blanks are one missing value, for a row alone (scored on the event
    loop) and inside a large batch (scored in a worker thread, built another way)."""
    base = {"PageValues": 12.5, "ProductRelated": 30, "Month": "Nov", "Browser": 2}
    spellings: list[dict[str, Any]] = [
        {},
        {"VisitorType": None, "Region": None},
        {"VisitorType": "", "Region": ""},
        {"VisitorType": "   ", "Region": " "},
    ]
    explicit = {"VisitorType": "Returning_Visitor", "Region": 3}
    rows = [base | s for s in spellings] + [base | explicit]
    with _client(SHIPPED) as client:
        alone = [
            client.post("/models/uci_online_shoppers/predict", json={"rows": [r]}) for r in rows
        ]
        batch = client.post("/models/uci_online_shoppers/predict", json={"rows": rows * 40})
    assert all(r.status_code == 200 for r in alone), [r.text for r in alone]
    assert batch.status_code == 200, batch.text
    single = [r.json()["predictions"][0]["probability"] for r in alone]
    batched = [p["probability"] for p in batch.json()["predictions"]]
    assert batched == single * 40
    assert len(set(single[:4])) == 1  # every spelling of missing scores alike
    assert single[4] != single[0]  # and the values, when given, count


# --- parity with the Python pipeline --------------------------------------------------------


@pytest.fixture(scope="module")
def uci_trained(tmp_path_factory: pytest.TempPathFactory, uci_csv: Path) -> tuple[Trained, Path]:
    models = tmp_path_factory.mktemp("uci") / "models"
    spec = load_spec("uci_online_shoppers")
    trained = train(
        load_dataset(uci_csv, spec), spec, load_config(UCI_CONFIG), models / "uci_online_shoppers"
    )
    return trained, models


def _json_rows(path: Path, n: int) -> list[dict[str, Any]]:
    """Rows as a storefront would send them: numbers as numbers, codes as integers, flags as
    booleans, straight from the CSV."""
    counts = {"Administrative", "Informational", "ProductRelated"}
    codes = {"OperatingSystems", "Browser", "Region", "TrafficType"}
    rows = []
    with path.open(newline="") as fh:
        for raw in csv.DictReader(fh):
            row: dict[str, Any] = {}
            for key, value in raw.items():
                if key == "Revenue":
                    continue
                if key in counts or key in codes:
                    row[key] = int(value)
                elif key == "Weekend":
                    row[key] = value == "TRUE"
                elif key in {"Month", "VisitorType"}:
                    row[key] = value
                else:
                    row[key] = float(value)
            rows.append(row)
            if len(rows) == n:
                break
    return rows


def test_predict_matches_the_python_pipeline_on_1000_uci_rows(uci_trained, uci_csv: Path) -> None:  # type: ignore[no-untyped-def]
    trained, models = uci_trained
    rows = _json_rows(uci_csv, 1000)
    expected = trained.fitted.predict(
        load_dataset(uci_csv, load_spec("uci_online_shoppers")).X.head(1000)
    )
    columns = {k: [r.get(k) for r in rows] for k in {k for r in rows for k in r}}
    with _client(models) as client:
        response = client.post("/predict", json={"rows": rows})
        as_columns = client.post("/predict", json={"columns": columns})
    assert response.status_code == 200, response.text
    got = np.array([p["probability"] for p in response.json()["predictions"]])
    assert len(got) == 1000
    assert np.abs(got - expected).max() <= 1e-5
    labels = [p["label"] for p in response.json()["predictions"]]
    assert labels == [bool(p >= trained.card.threshold) for p in got]
    # The same rows sent as columns get the same answer.
    assert as_columns.status_code == 200, as_columns.text
    assert as_columns.json() == response.json()


# --- broken bundles never serve -------------------------------------------------------------


def _copy(src: Path, dst_root: Path) -> Path:
    dst = dst_root / src.name
    shutil.copytree(src, dst)
    return dst


def _assert_not_ready(models: Path, *fragments: str) -> None:
    with _client(models) as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        message = ready.json()["error"]["message"]
        for fragment in fragments:
            assert fragment in message, message
        predict = client.post("/predict", json={"rows": [{}]})
        assert predict.status_code == 503
        assert client.get("/health/live").status_code == 200


def test_a_corrupt_model_file_is_not_served(tmp_path: Path) -> None:
    bundle = _copy(SHIPPED / "uci_online_shoppers", tmp_path)
    data = bytearray((bundle / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bundle / MODEL_FILE).write_bytes(bytes(data))
    _assert_not_ready(tmp_path, str(bundle / MODEL_FILE), "sha256 does not match")


def test_a_truncated_model_is_not_served_even_with_a_matching_checksum(tmp_path: Path) -> None:
    bundle = _copy(SHIPPED / "uci_online_shoppers", tmp_path)
    data = (bundle / MODEL_FILE).read_bytes()[:1000]
    (bundle / MODEL_FILE).write_bytes(data)
    card = json.loads((bundle / CARD_FILE).read_text())
    card["model_sha256"] = hashlib.sha256(data).hexdigest()
    (bundle / CARD_FILE).write_text(json.dumps(card))
    _assert_not_ready(tmp_path, "onnxruntime cannot load it")


def test_a_card_that_does_not_match_the_graph_is_not_served(tmp_path: Path) -> None:
    bundle = _copy(SHIPPED / "uci_online_shoppers", tmp_path)
    card = json.loads((bundle / CARD_FILE).read_text())
    card["features"] = [f for f in card["features"] if f["name"] != "Weekend"]
    (bundle / CARD_FILE).write_text(json.dumps(card))
    _assert_not_ready(
        tmp_path,
        "ONNX input numbers is tensor(float) [None, 11]",
        "the card's features need tensor(float) [N, 10]",
    )


@pytest.mark.parametrize("damage", ["flipped", "missing"])
def test_a_damaged_network_file_is_not_served(tmp_path: Path, damage: str) -> None:
    """The network alone (network.onnx), which ranks the encoded catalogue, is verified too."""
    bundle = _copy(SHIPPED / "storefront", tmp_path)
    network = bundle / json.loads((bundle / CARD_FILE).read_text())["encoding"]["network_file"]
    if damage == "missing":
        network.unlink()
        _assert_not_ready(tmp_path, str(network), "missing")
    else:
        data = bytearray(network.read_bytes())
        data[len(data) // 2] ^= 0xFF
        network.write_bytes(bytes(data))
        _assert_not_ready(tmp_path, str(network), "sha256 does not match")


def test_an_unreadable_card_is_not_served(tmp_path: Path) -> None:
    bundle = _copy(SHIPPED / "uci_online_shoppers", tmp_path)
    (bundle / CARD_FILE).write_text("{not json")
    _assert_not_ready(tmp_path, str(bundle / CARD_FILE), "not a valid card")


# --- /recommend on a trained bundle with a catalogue ----------------------------------------

PAIRS_SPEC = DatasetSpec.model_validate(
    {
        "name": "pairs",
        "label": "bought",
        "features": [
            {"name": "device", "kind": "categorical", "role": "user", "description": "device"},
            {
                "name": "budget",
                "kind": "numeric",
                "role": "user",
                "description": "budget",
                "minimum": 0,
            },
            {
                "name": "hour",
                "kind": "numeric",
                "role": "context",
                "description": "hour",
                "minimum": 0,
                "maximum": 23,
            },
            {
                "name": "price",
                "kind": "numeric",
                "role": "item",
                "description": "price",
                "minimum": 0,
                "transform": "log1p",
            },
            {"name": "category", "kind": "categorical", "role": "item", "description": "category"},
        ],
    }
)


def _pairs(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(user, item) pairs whose purchase falls with price over budget: a signal to recover."""
    rng = np.random.default_rng(seed)
    users = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(200)],
            "device": rng.choice(["mobile", "desktop"], 200),
            "budget": rng.gamma(3.0, 20.0, 200).round(2),
        }
    )
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(300)],
            "price": rng.gamma(2.0, 30.0, 300).round(2),
            "category": rng.choice(["shoes", "hats", "bags"], 300),
        }
    )
    u = rng.integers(0, 200, 20_000)
    i = rng.integers(0, 300, 20_000)
    frame = pd.concat(
        [users.iloc[u].reset_index(drop=True), items.iloc[i].reset_index(drop=True)], axis=1
    )
    frame["hour"] = rng.integers(0, 24, len(frame))
    z = 1.5 - 2.0 * frame["price"] / frame["budget"] + 0.8 * (frame["category"] == "shoes")
    frame["bought"] = rng.random(len(frame)) < 1 / (1 + np.exp(-z))
    return frame, users, items


@pytest.fixture(scope="module")
def catalogue_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("pairs")
    frame, users, items = _pairs(0)
    frame.to_parquet(root / "pairs.parquet", index=False)
    out = root / "models" / "pairs"
    train(
        load_dataset(root / "pairs.parquet", PAIRS_SPEC),
        PAIRS_SPEC,
        load_config(None, {"epochs": 3}),
        out,
    )
    add_table(out, "catalog", items, "item_id")
    add_table(out, "users", users, "user_id")
    return root / "models", items


def _direct_scores(models: Path, items: pd.DataFrame, user: dict[str, Any]) -> np.ndarray:
    session = ort.InferenceSession(str(models / "pairs" / MODEL_FILE))
    frame = pd.DataFrame(
        {
            "device": user["device"],
            "budget": user["budget"],
            "hour": float(user["hour"]),
            "price": items["price"].to_numpy(),
            "category": items["category"].to_numpy(object),
        }
    )
    return session.run(["probability"], onnx_feeds(frame, PAIRS_SPEC.features))[0].ravel()


def test_recommend_by_user_id_ranks_the_whole_catalogue(catalogue_models) -> None:  # type: ignore[no-untyped-def]
    models, items = catalogue_models
    _, users, _ = _pairs(0)
    user = users.set_index("user_id").loc["u7"]
    with _client(models, max_k=50) as client:
        response = client.post(
            "/recommend", json={"user_id": "u7", "features": {"hour": 20}, "k": 20}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["cold_start"] is False
    scores = _direct_scores(
        models, items, {"device": user["device"], "budget": user["budget"], "hour": 20}
    )
    best = np.argsort(-scores, kind="stable")[:20]
    assert [i["item_id"] for i in body["items"]] == [items["item_id"][j] for j in best]
    np.testing.assert_allclose([i["score"] for i in body["items"]], scores[best], atol=1e-6)
    # The model learned the signal: what it puts first is cheap for this user's budget.
    top_prices = items.set_index("item_id").loc[[i["item_id"] for i in body["items"]], "price"]
    assert top_prices.median() < items["price"].median()


def test_recommend_for_an_unknown_user_is_a_cold_start(catalogue_models) -> None:  # type: ignore[no-untyped-def]
    models, _ = catalogue_models
    with _client(models) as client:
        body = client.post(
            "/recommend", json={"user_id": "nobody", "k": 5, "exclude": ["i0", "i1"]}
        ).json()
    assert body["cold_start"] is True
    assert len(body["items"]) == 5
    assert not {"i0", "i1"} & {i["item_id"] for i in body["items"]}


def test_recommend_on_a_model_without_catalogue_is_a_409() -> None:
    with _client(SHIPPED) as client:
        response = client.post("/models/uci_online_shoppers/recommend", json={"features": {}})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_catalog"
