"""Loading one bundle: verify it, open its ONNX session, read its tables, and warm it up."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from pydantic import ValidationError

from app.card import (
    CARD_FILE,
    CATEGORIES_INPUT,
    MISSING_CATEGORY,
    MODEL_FILE,
    NUMBERS_INPUT,
    Feature,
    FeatureKind,
    FeatureRole,
    ModelCard,
    PairTableInfo,
    TableInfo,
    canonical_category,
    packed_columns,
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

    def lookup(
        self, user_id: str | None, index: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The same values, factored: `row[k]` picks item index[k]'s entry in `distinct`, whose
        entry 0 is the default and the others are this user's rows."""
        found = self.by_user.get(user_id) if user_id is not None else None
        positions = index if self.item_codes is None else self.item_codes[index]
        full = np.zeros(self.size, dtype=np.int64)
        distinct = {
            n: np.array([self.info.default[n]], dtype=np.float32) for n in self.info.features
        }
        if found is not None:
            full[found[0]] = np.arange(1, len(found[0]) + 1)
            distinct = {n: np.concatenate([distinct[n], found[1][n]]) for n in distinct}
        return full[positions], distinct

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


def _picker(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """itemgetter that always returns a tuple (itemgetter of one name returns the bare value)."""
    if len(names) == 1:
        (only,) = names
        return lambda d: (d[only],)
    if not names:
        return lambda d: ()
    return itemgetter(*names)


@dataclass(frozen=True)
class EncodedCatalogue:
    """The catalogue already through the model's preprocessing, and the network alone.

    Preprocessing works column by column, so a ranking only re-encodes what depends on the user:
    `constant` columns (user and context features, the same for every item) and `per_item`
    columns of the user-item features the pair tables provide.
    """

    items: np.ndarray  # [catalogue, encoded width], user columns as encoded for "missing"
    network: ort.InferenceSession = field(repr=False)
    output: str  # the model's output holding the encoded features
    constant: np.ndarray  # encoded column positions
    per_item: dict[str, np.ndarray]  # user-item feature -> its encoded column positions


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
    numbers: tuple[str, ...] = ()  # columns of the packed inputs, in order
    categories: tuple[str, ...] = ()
    # The catalogue as packed inputs, item columns filled once at load (the rest NaN / missing):
    # a ranking copies the rows it needs and fills in the user's columns.
    catalog_numbers: np.ndarray | None = field(default=None, repr=False)
    catalog_categories: np.ndarray | None = field(default=None, repr=False)
    encoded: EncodedCatalogue | None = field(default=None, repr=False)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Probabilities, shape [N], for packed inputs of N rows."""
        (out,) = self.session.run([self.card.output], feeds)
        return np.asarray(out).reshape(-1)

    @cached_property
    def pickers(self) -> tuple[Callable[[dict[str, Any]], Any], Callable[[dict[str, Any]], Any]]:
        """Functions that take a row's packed values, in order, out of its fields (a tuple)."""
        return _picker(self.numbers), _picker(self.categories)

    def encode(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The preprocessed features the network reads, [N, encoded width]."""
        assert self.encoded is not None
        (out,) = self.session.run([self.encoded.output], feeds)
        return np.asarray(out)

    def feeds(self, numbers: np.ndarray, categories: np.ndarray) -> dict[str, np.ndarray]:
        """The graph's inputs from [N, len(self.numbers)] and [N, len(self.categories)] blocks."""
        out = {}
        if self.numbers:
            out[NUMBERS_INPUT] = numbers
        if self.categories:
            out[CATEGORIES_INPUT] = categories
        return out


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
    """The graph's inputs are the card's features packed as app.card describes."""
    inputs = {i.name: i for i in session.get_inputs()}
    numbers, categories = packed_columns(card.features)
    expected = {
        name: (kind, len(columns))
        for name, kind, columns in (
            (NUMBERS_INPUT, "tensor(float)", numbers),
            (CATEGORIES_INPUT, "tensor(string)", categories),
        )
        if columns
    }
    if set(inputs) != set(expected):
        raise BundleError(
            path,
            f"ONNX inputs {sorted(inputs)} do not match the card, which needs {sorted(expected)} "
            "(a graph exported with one input per column? retrain with this version)",
        )
    for name, (kind, width) in expected.items():
        got = inputs[name]
        if got.type != kind or len(got.shape) != 2 or got.shape[1] != width:
            raise BundleError(
                path,
                f"ONNX input {name} is {got.type} {got.shape}; the card's features need "
                f"{kind} [N, {width}]",
            )
    outputs = [o.name for o in session.get_outputs()]
    if card.output not in outputs:
        raise BundleError(path, f"output {card.output!r} not in the graph ({outputs})")


def graph_value(feature: Feature, value: object) -> Any:
    """A value in the graph's type: a float, or a category's canonical string; None is missing."""
    if value is None:
        return missing_value(feature)
    if feature.kind is FeatureKind.CATEGORICAL:
        return canonical_category(value)
    return float(value)  # type: ignore[arg-type]


def packed_blocks(
    card: ModelCard, n: int, values: dict[str, object] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """[n, k] numbers and [n, m] categories, each column filled with `values` (or missing)."""
    numbers, categories = packed_columns(card.features)
    by_name = {f.name: f for f in card.features}
    values = values or {}
    block = np.empty((n, len(numbers)), dtype=np.float32)
    for i, name in enumerate(numbers):
        block[:, i] = graph_value(by_name[name], values.get(name))
    text = np.empty((n, len(categories)), dtype=object)
    for i, name in enumerate(categories):
        text[:, i] = graph_value(by_name[name], values.get(name))
    return block, text


def example_feeds(card: ModelCard, n: int = 1) -> dict[str, np.ndarray]:
    """Packed inputs of n rows built from the card's examples (missing where none)."""
    block, text = packed_blocks(card, n, {f.name: f.example for f in card.features})
    numbers, categories = packed_columns(card.features)
    feeds = {}
    if numbers:
        feeds[NUMBERS_INPUT] = block
    if categories:
        feeds[CATEGORIES_INPUT] = text
    return feeds


def catalog_blocks(card: ModelCard, catalog: Table) -> tuple[np.ndarray, np.ndarray]:
    """The catalogue's item columns placed in packed blocks, once, at load."""
    numbers, categories = packed_columns(card.features)
    block, text = packed_blocks(card, len(catalog))
    for i, name in enumerate(numbers):
        if name in catalog.columns:
            block[:, i] = catalog.columns[name]
    for i, name in enumerate(categories):
        if name in catalog.columns:
            text[:, i] = catalog.columns[name]
    return block, text


def _session(data: bytes, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


def _open_graph(file: Path, sha256: str, threads: int) -> ort.InferenceSession:
    """An ONNX graph of the bundle, opened only if its bytes are the ones the card names."""
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise BundleError(file, "missing") from None
    if _sha256(data) != sha256:
        raise BundleError(file, "sha256 does not match the card (corrupt or replaced)")
    try:
        return _session(data, threads)
    except Exception as exc:  # onnxruntime raises its own untyped errors for a bad graph
        raise BundleError(file, f"onnxruntime cannot load it ({exc})") from None


def encode_catalogue(path: Path, bundle: Bundle, threads: int) -> EncodedCatalogue:
    """Open the network alone and run the catalogue's item columns through preprocessing once."""
    card, info = bundle.card, bundle.card.encoding
    assert info is not None and bundle.catalog_numbers is not None
    assert bundle.catalog_categories is not None
    network = _open_graph(path / info.network_file, info.network_sha256, threads)
    role = {f.name: f.role for f in card.features}
    from_tables = {name for table in card.pairs for name in table.features}
    sources = np.array(info.sources, dtype=object)
    constant = np.flatnonzero(
        [role[s] is not FeatureRole.ITEM and s not in from_tables for s in info.sources]
    )
    per_item = {name: np.flatnonzero(sources == name) for name in sorted(from_tables)}
    encoded = EncodedCatalogue(
        items=np.empty((0, len(info.sources)), dtype=np.float32),
        network=network,
        output=info.output,
        constant=constant,
        per_item=per_item,
    )
    with_network = replace(bundle, encoded=encoded)
    items = with_network.encode(bundle.feeds(bundle.catalog_numbers, bundle.catalog_categories))
    if items.shape != (len(bundle.catalog_numbers), len(info.sources)):
        raise BundleError(path / MODEL_FILE, f"encoded catalogue has shape {items.shape}")
    return replace(encoded, items=items)


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
    session = _open_graph(model_file, card.model_sha256, threads)
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
    numbers, categories = packed_columns(card.features)
    blocks = catalog_blocks(card, catalog) if catalog is not None else (None, None)
    bundle = Bundle(
        card.name,
        path,
        card,
        session,
        catalog,
        users,
        tuple(pairs),
        tuple(numbers),
        tuple(categories),
        *blocks,
    )

    if card.encoding is not None and catalog is not None:
        bundle = replace(bundle, encoded=encode_catalogue(path, bundle, threads))
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
