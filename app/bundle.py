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
    PairTableInfo,
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
class PairTable:
    """User-item features by user: for each user, the positions they have rows for and the values.

    Positions index the catalogue (match "item") or the vocabulary of an item feature (e.g. the
    categories), whose code for every catalogue item is in `item_codes`.
    """

    info: PairTableInfo
    size: int  # catalogue length, or the vocabulary's
    item_codes: np.ndarray | None  # [catalogue] -> vocabulary position; None when matching items
    by_user: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]

    def values(self, user_id: str | None, index: np.ndarray) -> dict[str, np.ndarray]:
        """Each feature for the catalogue items at `index`, for this user (defaults if none)."""
        found = self.by_user.get(user_id) if user_id is not None else None
        positions = index if self.item_codes is None else self.item_codes[index]
        out = {}
        for name in self.info.features:
            full = np.full(self.size, self.info.default[name], dtype=np.float32)
            if found is not None:
                full[found[0]] = found[1][name]
            out[name] = full[positions]
        return out


@dataclass(frozen=True)
class Bundle:
    """A verified, warmed-up model: its card, its session and, if it has them, its tables."""

    name: str
    path: Path
    card: ModelCard
    session: ort.InferenceSession = field(repr=False)
    catalog: Table | None = None
    users: Table | None = None
    pairs: tuple[PairTable, ...] = ()

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


def read_pair_table(path: Path, info: PairTableInfo, catalog: Table) -> PairTable:
    """Read a user-item table and index it by user against the catalogue."""
    file = path / info.file
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise BundleError(file, "missing") from None
    if _sha256(data) != info.sha256:
        raise BundleError(file, "sha256 does not match the card")
    if info.match == "item":
        vocabulary, item_codes = catalog.index, None
    elif info.match in catalog.columns:
        names, codes = np.unique(catalog.columns[info.match].astype(str), return_inverse=True)
        vocabulary = {v: k for k, v in enumerate(names)}
        item_codes = codes.astype(np.int64)
    else:
        raise BundleError(file, f"matches {info.match!r}, which is not an item feature")
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
    absent = [
        c for c in (info.user_key, info.key, *info.features) if c not in (reader.fieldnames or [])
    ]
    if absent:
        raise BundleError(file, f"missing column(s) {', '.join(absent)}")
    rows: dict[str, tuple[list[int], dict[str, list[float]]]] = {}
    count = 0
    for line, row in enumerate(reader, start=2):
        count += 1
        key = row[info.key] if info.match == "item" else canonical_category(row[info.key])
        position = vocabulary.get(key)
        if position is None:
            continue  # an item (or category) no longer in the catalogue
        positions, values = rows.setdefault(
            row[info.user_key], ([], {n: [] for n in info.features})
        )
        positions.append(position)
        for name in info.features:
            try:
                values[name].append(float(row[name]))
            except ValueError:
                raise BundleError(file, f"line {line}, column {name}: not a number") from None
    if count != info.rows:
        raise BundleError(file, f"{count} rows, the card says {info.rows}")
    by_user = {
        user: (
            np.array(pos, dtype=np.int64),
            {n: np.array(v, dtype=np.float32) for n, v in vals.items()},
        )
        for user, (pos, vals) in rows.items()
    }
    return PairTable(info, len(vocabulary), item_codes, by_user)


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
    pairs: list[PairTable] = []
    if card.pairs:
        if catalog is None:
            raise BundleError(path / CARD_FILE, "user-item tables need a catalogue")
        pairs = [read_pair_table(path, info, catalog) for info in card.pairs]
    bundle = Bundle(card.name, path, card, session, catalog, users, tuple(pairs))

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
