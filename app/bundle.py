"""Loading one bundle: verify it, open its ONNX session, read its tables, and warm it up."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
from pydantic import ValidationError

from app.card import (
    CARD_FILE,
    MISSING_CATEGORY,
    MODEL_FILE,
    Feature,
    FeatureKind,
    FeatureRole,
    ModelCard,
    TableInfo,
    canonical_category,
)

log = logging.getLogger(__name__)

_TRUE = {"true", "1", "1.0", "yes"}
_FALSE = {"false", "0", "0.0", "no"}


class BundleError(Exception):
    """A bundle that must not be served, with the file and the problem."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def graph_dtype(feature: Feature) -> type:
    """Strings for categoricals, float32 for numbers and flags."""
    return object if feature.kind is FeatureKind.CATEGORICAL else np.float32


def missing_value(feature: Feature) -> object:
    return MISSING_CATEGORY if feature.kind is FeatureKind.CATEGORICAL else math.nan


@dataclass(frozen=True)
class Table:
    """A keyed table with each feature as a graph-ready column (float32, or strings)."""

    ids: np.ndarray  # object array of str
    index: dict[str, int]
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Bundle:
    """A verified, warmed-up model: its card, its session and, if it has them, its tables."""

    name: str
    path: Path
    card: ModelCard
    session: ort.InferenceSession = field(repr=False)
    catalog: Table | None = None
    users: Table | None = None

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Probabilities, shape [N], for graph inputs of shape [N, 1]."""
        (out,) = self.session.run([self.card.output], feeds)
        return np.asarray(out).reshape(-1)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cell(feature: Feature, text: str) -> object:
    """One CSV cell in the graph's type; empty means missing."""
    text = text.strip()
    if feature.kind is FeatureKind.CATEGORICAL:
        if feature.codes:
            try:
                return canonical_category(float(text))
            except ValueError:
                pass
        return canonical_category(text)
    if text == "":
        return math.nan
    if feature.kind is FeatureKind.BOOLEAN:
        low = text.lower()
        if low in _TRUE:
            return 1.0
        if low in _FALSE:
            return 0.0
        raise ValueError(f"{text!r} is not a boolean")
    return float(text)


def read_table(path: Path, info: TableInfo, features: list[Feature]) -> Table:
    """Read a bundle's CSV table, checking its checksum, key and feature columns."""
    file = path / info.file
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise BundleError(file, "missing") from None
    if _sha256(data) != info.sha256:
        raise BundleError(file, "sha256 does not match the card")
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
    header = reader.fieldnames or []
    absent = [c for c in (info.key, *(f.name for f in features)) if c not in header]
    if absent:
        raise BundleError(file, f"missing column(s) {', '.join(absent)}")
    ids: list[str] = []
    values: dict[str, list[object]] = {f.name: [] for f in features}
    for line, row in enumerate(reader, start=2):
        ids.append(row[info.key])
        for f in features:
            try:
                values[f.name].append(_cell(f, row[f.name] or ""))
            except ValueError as exc:
                raise BundleError(file, f"line {line}, column {f.name}: {exc}") from None
    if len(ids) != info.rows:
        raise BundleError(file, f"{len(ids)} rows, the card says {info.rows}")
    if len(set(ids)) != len(ids):
        raise BundleError(file, f"duplicate values in the key column {info.key}")
    columns: dict[str, np.ndarray] = {
        f.name: np.array(values[f.name], dtype=graph_dtype(f)) for f in features
    }
    id_array = np.array(ids, dtype=object)
    return Table(ids=id_array, index={k: i for i, k in enumerate(ids)}, columns=columns)


def _check_inputs(path: Path, session: ort.InferenceSession, card: ModelCard) -> None:
    inputs = {i.name: i for i in session.get_inputs()}
    expected = {f.name: f for f in card.features}
    if set(inputs) != set(expected):
        extra = sorted(set(inputs) - set(expected))
        lacking = sorted(set(expected) - set(inputs))
        raise BundleError(
            path,
            f"ONNX inputs do not match the card (not in card: {extra}, not in graph: {lacking})",
        )
    for name, f in expected.items():
        want = "tensor(string)" if f.kind is FeatureKind.CATEGORICAL else "tensor(float)"
        if inputs[name].type != want:
            raise BundleError(path, f"input {name} is {inputs[name].type}, the card needs {want}")
    outputs = [o.name for o in session.get_outputs()]
    if card.output not in outputs:
        raise BundleError(path, f"output {card.output!r} not in the graph ({outputs})")


def example_feeds(card: ModelCard, n: int = 1) -> dict[str, np.ndarray]:
    """Feeds built from the card's examples (missing where a feature has none)."""
    feeds: dict[str, np.ndarray] = {}
    for f in card.features:
        value: object = f.example if f.example is not None else missing_value(f)
        if f.kind is FeatureKind.CATEGORICAL:
            value = canonical_category(value)
        elif isinstance(value, bool):
            value = float(value)
        feeds[f.name] = np.full((n, 1), value, dtype=graph_dtype(f))
    return feeds


def load_bundle(path: Path, threads: int = 1) -> Bundle:
    """Verify and open a bundle directory; raises BundleError naming the file and the problem."""
    card_file = path / CARD_FILE
    try:
        card = ModelCard.model_validate_json(card_file.read_bytes())
    except FileNotFoundError:
        raise BundleError(card_file, "missing") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "card"
        raise BundleError(card_file, f"not a valid card ({where}: {first['msg']})") from None
    model_file = path / MODEL_FILE
    try:
        model_bytes = model_file.read_bytes()
    except FileNotFoundError:
        raise BundleError(model_file, "missing") from None
    if _sha256(model_bytes) != card.model_sha256:
        raise BundleError(model_file, "sha256 does not match the card (corrupt or replaced)")

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors for a bad graph
        raise BundleError(model_file, f"onnxruntime cannot load it ({exc})") from None
    _check_inputs(model_file, session, card)

    catalog = users = None
    if card.catalog is not None:
        catalog = read_table(path, card.catalog, card.with_role(FeatureRole.ITEM))
    if card.users is not None:
        users = read_table(path, card.users, card.with_role(FeatureRole.USER))
    bundle = Bundle(card.name, path, card, session, catalog, users)

    warm = bundle.run(example_feeds(card))
    if warm.shape != (1,) or not (np.isfinite(warm).all() and 0.0 <= warm[0] <= 1.0):
        raise BundleError(model_file, f"warm-up gave {warm!r}, not one probability")
    log.info(
        "loaded %s %s from %s (%d features%s)",
        card.name,
        card.version,
        path,
        len(card.features),
        f", catalogue of {len(catalog)} items" if catalog is not None else "",
    )
    return bundle
