"""Writing a bundle: model.onnx, card.json, the report and plots, in one directory, atomically."""

from __future__ import annotations

import hashlib
import platform
import re
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.card import (
    CARD_FILE,
    MISSING_CATEGORY,
    MODEL_FILE,
    FeatureKind,
    FeatureRole,
    ModelCard,
    PairTableInfo,
    TableInfo,
    canonical_category,
)
from training.errors import TrainingError
from training.plots import write_plots
from training.report import write_report

_LIBRARIES = (
    "numpy",
    "pandas",
    "scikit-learn",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "skl2onnx",
    "tf2onnx",
    "onnx",
    "onnxruntime",
)


def library_versions() -> dict[str, str]:
    """Versions of Python and of every library that shaped the model."""
    versions = {"python": platform.python_version()}
    for lib in _LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    return versions


BUNDLE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def check_destination(out_dir: Path, name: str | None = None) -> None:
    """Refuse, before any training, an --out that a bundle cannot be written to or must not
    replace: a file, or a directory with other things in it. Only a bundle (it has a card)
    is replaced, as retraining into models/NAME does."""
    resolved = out_dir.resolve()
    bundle_name = name or resolved.name
    if not BUNDLE_NAME.match(bundle_name):
        raise TrainingError(
            f"model name {bundle_name!r} (from {'--name' if name else '--out'}): use lower-case "
            "letters, digits, '_', '.' and '-', starting with a letter or digit"
        )
    if resolved.exists() and not resolved.is_dir():
        raise TrainingError(f"--out {out_dir} is a file, not a directory")
    if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents:
        raise TrainingError(f"--out {out_dir} is the current directory or above it; name a new one")
    if resolved.is_dir() and any(resolved.iterdir()) and not (resolved / CARD_FILE).is_file():
        raise TrainingError(
            f"--out {out_dir} is not empty and is not a model bundle (it has no {CARD_FILE}): "
            "refusing to replace it; choose a new directory"
        )


def write_bundle(
    out_dir: Path,
    model_bytes: bytes,
    card: ModelCard,
    y_test: np.ndarray,
    scores: dict[str, np.ndarray],
    extra: dict[str, Any],
    files: dict[str, bytes] | None = None,
) -> ModelCard:
    """Write everything to a temporary sibling, then swap it in: a reader never sees half a bundle.

    The card's checksum is set from the bytes written; an empty version becomes its first 12 hex
    digits, so a version names exactly one model.
    """
    digest = hashlib.sha256(model_bytes).hexdigest()
    card = card.model_copy(update={"model_sha256": digest, "version": card.version or digest[:12]})
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a service running as another user reads it
        (tmp / MODEL_FILE).write_bytes(model_bytes)
        for name, data in (files or {}).items():
            (tmp / name).write_bytes(data)
        plots = write_plots(y_test, scores, tmp)
        write_report(tmp, card, {**extra, "plots": [p.name for p in plots]})
        (tmp / CARD_FILE).write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
        check_destination(out_dir, card.name)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return card


def add_table(out_dir: Path, table: str, frame: pd.DataFrame, key: str) -> ModelCard:
    """Write the item catalogue ("catalog") or user snapshot ("users") into a bundle as CSV.

    The table holds the key and the features of the matching role, in the spellings the service
    reads; the card records its checksum.
    """
    role = {"catalog": FeatureRole.ITEM, "users": FeatureRole.USER}[table]
    card = ModelCard.model_validate_json((out_dir / CARD_FILE).read_text(encoding="utf-8"))
    features = card.with_role(role)
    if not features:
        raise TrainingError(f"{table}: the model has no {role.value} features")
    absent = [c for c in (key, *(f.name for f in features)) if c not in frame.columns]
    if absent:
        raise TrainingError(f"{table}: missing column(s) {', '.join(map(repr, absent))}")
    if frame[key].isna().any() or frame[key].astype(str).duplicated().any():
        raise TrainingError(f"{table}: the key {key!r} must be present and unique on every row")
    out = pd.DataFrame({key: frame[key].astype(str)})
    for f in features:
        col = frame[f.name]
        if f.kind is FeatureKind.CATEGORICAL:
            out[f.name] = [
                "" if (v := canonical_category(x)) == MISSING_CATEGORY else v
                for x in col.astype(object)
            ]
        elif f.kind is FeatureKind.BOOLEAN:
            out[f.name] = col.map({True: "true", False: "false"}).fillna("")
        else:
            out[f.name] = pd.to_numeric(col, errors="raise")
    path = out_dir / f"{table}.csv"
    out.to_csv(path, index=False, lineterminator="\n")
    info = TableInfo(
        file=path.name, key=key, rows=len(out), sha256=hashlib.sha256(path.read_bytes()).hexdigest()
    )
    card = card.model_copy(update={table: info})
    (out_dir / CARD_FILE).write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return card


def add_pair_table(
    out_dir: Path,
    file: str,
    frame: pd.DataFrame,
    *,
    user_key: str,
    key: str,
    match: str,
    features: list[str],
) -> ModelCard:
    """Write user-item features keyed by (user, item) or (user, an item feature) into a bundle.

    A pair without a row takes 0 for each feature: what training gives a pair with no history.
    """
    card = ModelCard.model_validate_json((out_dir / CARD_FILE).read_text(encoding="utf-8"))
    roles = {f.name: f.role for f in card.features}
    wrong = [f for f in features if roles.get(f) is not FeatureRole.USER_ITEM]
    if wrong:
        raise TrainingError(f"{file}: not user-item features of the model: {', '.join(wrong)}")
    if match != "item" and roles.get(match) is not FeatureRole.ITEM:
        raise TrainingError(f"{file}: {match!r} is neither 'item' nor an item feature")
    out = frame[[user_key, key, *features]].copy()
    out[user_key] = out[user_key].astype(str)
    out[key] = out[key].astype(str)
    path = out_dir / file
    out.to_csv(path, index=False, lineterminator="\n")
    info = PairTableInfo(
        file=file,
        user_key=user_key,
        key=key,
        match=match,
        features=features,
        default=dict.fromkeys(features, 0.0),
        rows=len(out),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
    )
    pairs = [p for p in card.pairs if p.file != file] + [info]
    card = card.model_copy(update={"pairs": pairs})
    (out_dir / CARD_FILE).write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return card
