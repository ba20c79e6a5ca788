"""Training end to end on synthetic sessions whose true purchase probabilities are known."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.metrics import roc_auc_score

from app.card import MISSING_CATEGORY, ModelCard, packed_columns
from training.config import load_config
from training.data import Dataset, load_dataset
from training.errors import TrainingError
from training.export import onnx_feeds
from training.spec import load_spec
from training.synthetic import TRUE_PROBABILITY, generate_sessions
from training.train import split_indices, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelCard, Path, Dataset]:
    root = tmp_path_factory.mktemp("synthetic")
    data = root / "sessions.parquet"
    generate_sessions(50_000, seed=0).to_parquet(data, index=False)
    spec = load_spec("synthetic_sessions")
    dataset = load_dataset(data, spec, keep=(TRUE_PROBABILITY,))
    out = root / "models" / "synthetic_sessions"
    card = train(dataset, spec, load_config(None), out).card
    return card, out, dataset


def test_model_auc_is_within_a_hundredth_of_the_true_probabilities(trained) -> None:  # type: ignore[no-untyped-def]
    card, _, dataset = trained
    _, _, test = split_indices(dataset.y, load_config(None))
    assert dataset.extra is not None
    best = roc_auc_score(dataset.y[test], dataset.extra[TRUE_PROBABILITY].to_numpy()[test])
    assert card.metrics["roc_auc"] >= best - 0.01, (card.metrics["roc_auc"], best)
    assert card.metrics["roc_auc"] <= best + 0.01  # above the truth by more would mean leakage


def test_bundle_holds_model_card_report_and_plots(trained) -> None:  # type: ignore[no-untyped-def]
    _, out, _ = trained
    names = {p.name for p in out.iterdir()}
    assert {
        "model.onnx",
        "card.json",
        "report.md",
        "report.json",
        "roc.png",
        "precision_recall.png",
        "calibration.png",
        "lift.png",
    } <= names
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp dir left
    assert out.stat().st_mode & 0o777 == 0o755  # readable by a service running as another user
    report = json.loads((out / "report.json").read_text())
    assert set(report["metrics"]) == {"model", "logistic_regression", "hist_gradient_boosting"}
    assert "| roc_auc ↑ |" in (out / "report.md").read_text()


def test_card_records_what_a_reader_needs_to_trust_it(trained) -> None:  # type: ignore[no-untyped-def]
    card, out, dataset = trained
    on_disk = ModelCard.model_validate_json((out / "card.json").read_text())
    assert on_disk == card
    assert card.model_sha256 == hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest()
    assert card.version == card.model_sha256[:12]
    assert card.dataset.sha256 == dataset.sha256
    assert card.dataset.rows == 50_000
    assert card.features == load_spec("synthetic_sessions").features
    assert 0.05 < card.threshold < 0.95
    assert {"tensorflow-cpu", "keras", "scikit-learn", "onnx", "python"} <= set(card.versions)
    assert card.hyperparameters["layers"] == [32, 16]
    assert set(card.baselines) == {"logistic_regression", "hist_gradient_boosting"}
    assert card.parity_max_abs_diff is not None and card.parity_max_abs_diff <= 1e-5


def test_graph_inputs_are_the_raw_columns_packed_by_kind(trained) -> None:  # type: ignore[no-untyped-def]
    card, out, _ = trained
    session = ort.InferenceSession(str(out / "model.onnx"))
    inputs = {i.name: (i.type, i.shape[1]) for i in session.get_inputs()}
    numbers, categories = packed_columns(card.features)
    assert inputs == {
        "numbers": ("tensor(float)", len(numbers)),
        "categories": ("tensor(string)", len(categories)),
    }
    assert categories == ["device", "traffic_source"]
    # The probability, and the preprocessed features the network reads (for ranking catalogues).
    assert [o.name for o in session.get_outputs()] == ["probability", "encoded"]
    assert card.encoding is not None
    assert session.get_outputs()[1].shape[1] == len(card.encoding.sources)
    assert set(card.encoding.sources) == {f.name for f in card.features}
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["columns.numbers"].split(",") == numbers
    assert meta["columns.categories"].split(",") == categories


def test_graph_scores_missing_and_unseen_values(trained) -> None:  # type: ignore[no-untyped-def]
    card, out, dataset = trained
    frame = dataset.X.head(3).copy()
    frame.loc[0, "session_seconds"] = np.nan
    frame.loc[1, "device"] = MISSING_CATEGORY
    frame.loc[2, "traffic_source"] = "carrier pigeon"
    session = ort.InferenceSession(str(out / "model.onnx"))
    p = session.run(["probability"], onnx_feeds(frame, card.features))[0].ravel()
    assert np.isfinite(p).all()
    assert ((p > 0) & (p < 1)).all()


def test_export_refuses_to_write_a_bundle_that_disagrees(tmp_path: Path) -> None:
    data = tmp_path / "s.csv"
    generate_sessions(3_000, seed=1).to_csv(data, index=False)
    spec = load_spec("synthetic_sessions")
    out = tmp_path / "models" / "never"
    # float32 inference cannot agree with float64 to 1e-12, so the check must refuse.
    config = load_config(None, {"epochs": 1, "parity_tolerance": 1e-12})
    with pytest.raises(TrainingError, match="export refused"):
        train(load_dataset(data, spec), spec, config, out)
    assert not out.exists()
    assert not (tmp_path / "models").exists()
