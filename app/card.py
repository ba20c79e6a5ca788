"""The model card: the contract a bundle carries from training to serving (pydantic only)."""

from __future__ import annotations

import math
import numbers
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# What a missing categorical value is called inside the graph. Training writes it in place of a
# missing value and the service sends it for an absent one, so both sides agree on one spelling
# (onnxruntime would otherwise turn a Python None into the string "None").
MISSING_CATEGORY = "__missing__"

CARD_FILE = "card.json"
MODEL_FILE = "model.onnx"

# The graph takes the raw features packed into (at most) two inputs, in card order: the numbers
# and flags as one float32 [N, k] tensor, the categories as one string [N, m] tensor. One input
# per column would cost onnxruntime about half a microsecond per column per call.
NUMBERS_INPUT = "numbers"
CATEGORIES_INPUT = "categories"


class FeatureKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"


class FeatureRole(StrEnum):
    CONTEXT = "context"
    USER = "user"
    ITEM = "item"
    USER_ITEM = "user_item"  # depends on the pair: times this user bought this item, ...


class Missing(StrEnum):
    """How a missing value is imputed inside the graph."""

    MEDIAN = "median"
    MEAN = "mean"
    ZERO = "zero"
    MOST_FREQUENT = "most_frequent"
    CATEGORY = "category"  # categorical only: missing is a category of its own


class Transform(StrEnum):
    NONE = "none"
    LOG1P = "log1p"  # for long-tailed counts and durations; needs minimum >= 0


_DEFAULT_MISSING = {
    FeatureKind.NUMERIC: Missing.MEDIAN,
    FeatureKind.CATEGORICAL: Missing.CATEGORY,
    FeatureKind.BOOLEAN: Missing.MOST_FREQUENT,
}
_ALLOWED_MISSING = {
    FeatureKind.NUMERIC: {Missing.MEDIAN, Missing.MEAN, Missing.ZERO},
    FeatureKind.CATEGORICAL: {Missing.CATEGORY, Missing.MOST_FREQUENT},
    FeatureKind.BOOLEAN: {Missing.MOST_FREQUENT, Missing.ZERO},
}


class Feature(BaseModel):
    """One raw input column: its type, role, documentation and treatment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    kind: FeatureKind
    role: FeatureRole = FeatureRole.CONTEXT
    description: str
    # Categorical: the values known when the spec was written. Others are scored, not rejected.
    values: list[str] | None = None
    # Categorical given as integer codes (e.g. a browser id): a request may send 3 or "3".
    codes: bool = False
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    missing: Missing | None = None
    transform: Transform = Transform.NONE
    required: bool = False
    example: float | str | bool | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Feature:
        if self.missing is None:
            object.__setattr__(self, "missing", _DEFAULT_MISSING[self.kind])
        if self.missing not in _ALLOWED_MISSING[self.kind]:
            allowed = ", ".join(sorted(m.value for m in _ALLOWED_MISSING[self.kind]))
            raise ValueError(
                f"feature {self.name!r}: missing={self.missing} does not fit kind={self.kind}; "
                f"use one of {allowed}"
            )
        if self.kind is not FeatureKind.NUMERIC and (
            self.transform is not Transform.NONE
            or self.minimum is not None
            or self.maximum is not None
            or self.integer
        ):
            raise ValueError(
                f"feature {self.name!r}: transform, minimum, maximum and integer apply to "
                "numeric features only"
            )
        if self.kind is not FeatureKind.CATEGORICAL and (self.values or self.codes):
            raise ValueError(f"feature {self.name!r}: values and codes apply to categoricals only")
        if self.transform is Transform.LOG1P and (self.minimum is None or self.minimum < 0):
            raise ValueError(f"feature {self.name!r}: log1p needs minimum >= 0")
        if (
            self.minimum is not None
            and self.maximum is not None
            and not self.minimum <= self.maximum
        ):
            raise ValueError(f"feature {self.name!r}: minimum is above maximum")
        if self.values and MISSING_CATEGORY in self.values:
            raise ValueError(f"feature {self.name!r}: {MISSING_CATEGORY!r} is reserved")
        return self

    @property
    def imputation(self) -> Missing:
        assert self.missing is not None  # set by the validator
        return self.missing


def packed_columns(features: list[Feature]) -> tuple[list[str], list[str]]:
    """Feature names in the graph's numbers input and in its categories input, in order."""
    numbers = [f.name for f in features if f.kind is not FeatureKind.CATEGORICAL]
    categories = [f.name for f in features if f.kind is FeatureKind.CATEGORICAL]
    return numbers, categories


def canonical_category(value: object) -> str:
    """The string a categorical value becomes in the graph: 3, 3.0 and "3" all become "3".

    None, NaN and the empty string are missing.
    """
    if value is None:
        return MISSING_CATEGORY
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return MISSING_CATEGORY
        return str(int(number)) if number.is_integer() else repr(number)
    text = str(value).strip()
    return text if text else MISSING_CATEGORY


class DatasetInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    file: str
    sha256: str
    rows: int
    positives: int
    label: str
    source: str | None = None
    license: str | None = None


class TableInfo(BaseModel):
    """A CSV table in the bundle keyed by an id column: the item catalogue or a user snapshot."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(pattern=r"^[A-Za-z0-9_.-]+\.csv$")
    key: str
    rows: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class PairTableInfo(BaseModel):
    """User-item features in the bundle, as a CSV of (user, key, features...).

    `match` names what `key` is matched against: "item" for the item id, or the name of an item
    feature (e.g. a category) so that one row serves every item that shares it. A pair with no
    row takes `default` for each feature.
    """

    model_config = ConfigDict(extra="forbid")

    file: str = Field(pattern=r"^[A-Za-z0-9_.-]+\.csv$")
    user_key: str
    key: str
    match: str = "item"
    features: list[str] = Field(min_length=1)
    default: dict[str, float]
    rows: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class EncodingInfo(BaseModel):
    """How to score many items for one user without re-encoding the catalogue every time.

    model.onnx also outputs `output`, the preprocessed features the network reads, one column
    per entry of `sources` (the raw feature each column comes from); `network_file` is the
    network alone, from those columns to the probability. The service encodes the catalogue's
    item columns once and, per request, only the user's.
    """

    model_config = ConfigDict(extra="forbid")

    output: str = "encoded"
    sources: list[str] = Field(min_length=1)
    network_file: str = Field(default="network.onnx", pattern=r"^[A-Za-z0-9_.-]+\.onnx$")
    network_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class MeanStd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mean: float
    std: float


class ModelCard(BaseModel):
    """Everything the service needs to know about a bundle, and what a reader needs to trust it."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    schema_version: int = 1
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    version: str
    created_at: datetime
    description: str = ""
    dataset: DatasetInfo
    features: list[Feature]
    output: str = "probability"
    threshold: float = Field(ge=0.0, le=1.0)
    threshold_rule: str = "max F1 on validation data"
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]] = {}
    cross_validation: dict[str, dict[str, MeanStd]] | None = None
    hyperparameters: dict[str, Any] = {}
    seed: int
    versions: dict[str, str] = {}
    parity_max_abs_diff: float | None = None
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    catalog: TableInfo | None = None  # items to rank, with their item-role features
    users: TableInfo | None = None  # user-role features by user id, for /recommend by id
    pairs: list[PairTableInfo] = []  # user-item features by user id and item (or item attribute)
    encoding: EncodingInfo | None = None
    ranking_metrics: dict[str, dict[str, float]] | None = None  # model and baselines, @k on users

    @model_validator(mode="after")
    def _unique_features(self) -> ModelCard:
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate feature names: {', '.join(dupes)}")
        return self

    def with_role(self, role: FeatureRole) -> list[Feature]:
        return [f for f in self.features if f.role is role]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)
