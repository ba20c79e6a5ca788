"""The training run: split, fit, evaluate against baselines, cross-validate, export, bundle."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from app.card import DatasetInfo, EncodingInfo, MeanStd, ModelCard
from training.baselines import build_baselines
from training.bundle import library_versions, write_bundle
from training.config import TrainConfig
from training.data import Dataset
from training.errors import TrainingError
from training.export import check_parity, export_onnx, probe_rows
from training.metrics import choose_threshold, compute_metrics, summarise
from training.network import build_network, fit_network, predict_network, seed_everything
from training.preprocess import build_preprocessor
from training.spec import DatasetSpec

log = logging.getLogger(__name__)

MODEL = "model"


@dataclass(frozen=True)
class Fitted:
    """The fitted preprocessor and network, and the threshold chosen on validation data."""

    preprocessor: Any
    network: Any
    threshold: float
    history: dict[str, list[float]]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return predict_network(self.network, self.preprocessor.transform(frame))


@dataclass(frozen=True)
class Trained:
    """What a run produced: the card of the bundle it wrote, and the Python pipeline behind it."""

    card: ModelCard
    fitted: Fitted


@dataclass(frozen=True)
class Evaluation:
    """Test metrics of the model and each baseline, with their test scores for the plots."""

    metrics: dict[str, dict[str, float]]
    thresholds: dict[str, float]
    scores: dict[str, np.ndarray]
    y_test: np.ndarray


def split_indices(y: np.ndarray, config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train / validation / test row indices, fixed by the seed."""
    idx = np.arange(len(y))
    try:
        rest, test = train_test_split(
            idx, test_size=config.test_fraction, stratify=y, random_state=config.seed
        )
        train, val = _split_validation(rest, y, config)
    except ValueError as exc:  # scikit-learn's word for "too few rows of a class to stratify"
        positives = int(np.sum(y == 1))
        raise TrainingError(
            f"too little data to split into train, validation and test: {len(y)} rows, "
            f"{positives} positive and {len(y) - positives} negative ({exc})"
        ) from None
    return train, val, test


def _split_validation(
    idx: np.ndarray, y: np.ndarray, config: TrainConfig
) -> tuple[np.ndarray, np.ndarray]:
    train, val = train_test_split(
        idx, test_size=config.validation_fraction, stratify=y[idx], random_state=config.seed
    )
    return np.sort(train), np.sort(val)


def fit_and_evaluate(
    X: pd.DataFrame,
    y: np.ndarray,
    split: tuple[np.ndarray, np.ndarray, np.ndarray],
    spec: DatasetSpec,
    config: TrainConfig,
) -> tuple[Fitted, Evaluation]:
    """Fit preprocessing, network and baselines on train; thresholds on validation; score test."""
    train, val, test = split
    for name, part in (("train", train), ("validation", val), ("test", test)):
        if len(np.unique(y[part])) < 2:
            raise TrainingError(f"the {name} split has only one class; more data is needed")
    seed_everything(config.seed)
    preprocessor = build_preprocessor(spec).fit(X.iloc[train])
    A_train, A_val, A_test = (preprocessor.transform(X.iloc[i]) for i in (train, val, test))
    network = build_network(A_train.shape[1], config)
    history = fit_network(network, A_train, y[train], A_val, y[val], config)

    val_scores = {MODEL: predict_network(network, A_val)}
    test_scores = {MODEL: predict_network(network, A_test)}
    for name, estimator in build_baselines(config.seed).items():
        estimator.fit(A_train, y[train])
        val_scores[name] = estimator.predict_proba(A_val)[:, 1]
        test_scores[name] = estimator.predict_proba(A_test)[:, 1]
    thresholds = {n: choose_threshold(y[val], s) for n, s in val_scores.items()}
    metrics = {n: compute_metrics(y[test], s, thresholds[n]) for n, s in test_scores.items()}
    fitted = Fitted(preprocessor, network, thresholds[MODEL], history)
    return fitted, Evaluation(metrics, thresholds, test_scores, y[test])


def cross_validate(
    X: pd.DataFrame, y: np.ndarray, spec: DatasetSpec, config: TrainConfig, folds: int
) -> dict[str, dict[str, MeanStd]]:
    """Stratified K-fold: each fold tests on its part, validates on 20% of the rest."""
    if folds < 2:
        raise TrainingError("--cv needs at least 2 folds")
    if np.bincount(y).min() < folds:
        raise TrainingError(f"--cv {folds}: the smaller class has fewer rows than folds")
    kfold = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config.seed)
    runs: dict[str, list[dict[str, float]]] = {}
    for k, (rest, test) in enumerate(kfold.split(X, y), start=1):
        started = time.perf_counter()
        train, val = _split_validation(rest, y, config)
        _, evaluation = fit_and_evaluate(X, y, (train, val, test), spec, config)
        for name, m in evaluation.metrics.items():
            runs.setdefault(name, []).append(m)
        log.info(
            "fold %d/%d: model roc_auc=%.4f pr_auc=%.4f (%.1f s)",
            k,
            folds,
            evaluation.metrics[MODEL]["roc_auc"],
            evaluation.metrics[MODEL]["pr_auc"],
            time.perf_counter() - started,
        )
    return {
        name: {m: MeanStd(mean=mean, std=std) for m, (mean, std) in summarise(r).items()}
        for name, r in runs.items()
    }


def train(
    dataset: Dataset,
    spec: DatasetSpec,
    config: TrainConfig,
    out_dir: Path,
    *,
    name: str | None = None,
    version: str | None = None,
    cv_folds: int | None = None,
) -> Trained:
    """The whole run; writes the bundle to out_dir and returns its card and fitted pipeline."""
    started = time.perf_counter()
    X, y = dataset.X, dataset.y
    cv = None
    if cv_folds:
        log.info("cross-validating over %d folds", cv_folds)
        cv = cross_validate(X, y, spec, config, cv_folds)
        for metric in ("roc_auc", "pr_auc"):
            log.info(
                "cv %s: %s",
                metric,
                "  ".join(f"{n}={s[metric].mean:.4f}±{s[metric].std:.4f}" for n, s in cv.items()),
            )

    split = split_indices(y, config)
    log.info(
        "fitting on %d rows (validation %d, test %d)", len(split[0]), len(split[1]), len(split[2])
    )
    fitted, evaluation = fit_and_evaluate(X, y, split, spec, config)
    for n, m in evaluation.metrics.items():
        log.info("test %s: roc_auc=%.4f pr_auc=%.4f f1=%.4f", n, m["roc_auc"], m["pr_auc"], m["f1"])

    test_frame = X.iloc[split[2]].reset_index(drop=True)
    dataset_info = DatasetInfo(
        name=spec.name,
        file=dataset.file,
        sha256=dataset.sha256,
        rows=len(y),
        positives=int(y.sum()),
        label=spec.label,
        source=spec.source,
        license=spec.license,
    )
    extra = {
        "split": f"stratified {len(split[0])} train / {len(split[1])} validation / "
        f"{len(split[2])} test rows, seed {config.seed}",
        "cleaning": dataset.report.lines(),
        "cv_folds": cv_folds,
    }
    card = publish(
        fitted,
        evaluation,
        spec,
        config,
        out_dir,
        test_frame,
        dataset_info,
        extra,
        started=started,
        name=name,
        version=version,
        cross_validation=cv,
    )
    return Trained(card, fitted)


def publish(
    fitted: Fitted,
    evaluation: Evaluation,
    spec: DatasetSpec,
    config: TrainConfig,
    out_dir: Path,
    test_frame: pd.DataFrame,
    dataset: DatasetInfo,
    extra: dict[str, Any],
    *,
    started: float,
    name: str | None,
    version: str | None,
    **card_fields: Any,
) -> ModelCard:
    """Export one ONNX graph, check it against the Python pipeline, write the bundle."""
    log.info("exporting to ONNX")
    exported = export_onnx(fitted.preprocessor, fitted.network, spec.features)
    parity_frame = pd.concat([test_frame, probe_rows(test_frame, spec.features)], ignore_index=True)
    parity = check_parity(
        exported, parity_frame, spec.features, fitted.predict, config.parity_tolerance
    )
    encoding = EncodingInfo(
        sources=exported.sources, network_sha256=hashlib.sha256(exported.network).hexdigest()
    )
    card = ModelCard(
        name=name or out_dir.name,
        version=version or "",
        created_at=datetime.now(UTC),
        description=spec.description,
        dataset=dataset,
        features=spec.features,
        threshold=fitted.threshold,
        metrics=evaluation.metrics[MODEL],
        baselines={n: m for n, m in evaluation.metrics.items() if n != MODEL},
        hyperparameters=config.model_dump(mode="json"),
        seed=config.seed,
        versions=library_versions(),
        parity_max_abs_diff=parity,
        model_sha256="0" * 64,  # set by write_bundle from the bytes it writes
        encoding=encoding,
        **card_fields,
    )
    extra = {
        **extra,
        "history": fitted.history,
        "baseline_thresholds": {n: t for n, t in evaluation.thresholds.items() if n != MODEL},
        "seconds": time.perf_counter() - started,
    }
    card = write_bundle(
        out_dir,
        exported.model,
        card,
        evaluation.y_test,
        evaluation.scores,
        extra,
        files={encoding.network_file: exported.network},
    )
    log.info("wrote %s (%s) in %.1f s", out_dir, card.version, time.perf_counter() - started)
    return card
