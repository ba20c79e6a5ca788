"""Request and response models, derived from a model card so /docs shows the real contract."""

from __future__ import annotations

import re
from collections import Counter
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictStr,
    WithJsonSchema,
    model_validator,
)
from pydantic import create_model as _create_model
from pydantic_core import PydanticCustomError

from app.card import Feature, FeatureKind, FeatureRole, ModelCard
from app.settings import Settings

MAX_SAFE_INTEGER = 2**53 - 1

_ROW_CONFIG = ConfigDict(
    extra="forbid", allow_inf_nan=False, frozen=True, str_strip_whitespace=True
)


def _code(value: object) -> str:
    """An integer code sent as a JSON number or a string; one error message for anything else.

    3, 3.0, "3", " 3 " and "3.0" become "3", as training spells it.
    """
    if type(value) is int:  # not a bool; and first: this runs for every code of every row
        return str(value)
    if isinstance(value, str):
        value = value.strip()
        try:
            number = float(value)
        except ValueError:
            return value
        return str(int(number)) if number.is_integer() else value
    # JSON does not tell 2 from 2.0 (a client's floats serialise as 2.0): a whole number is a code.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    raise ValueError("Input should be a string or an integer code")


Code = Annotated[
    str,
    PlainValidator(_code),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}]}),
]


def _count(value: float) -> float:
    if not value.is_integer():
        raise ValueError("Input should be a whole number")
    return value


def _whole(value: object) -> object:
    """JSON Schema counts 3.0 as an integer: accept it as 3 (but never a bool or a string)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole)]


def _describe(f: Feature) -> str:
    parts = [f.description, f"({f.role.value} feature)"]
    if f.values:
        parts.append(f"Known values: {', '.join(f.values)}; others are accepted and scored.")
    if f.codes:
        parts.append("An integer code, sent as a number or a string.")
    if not f.required:
        parts.append("Optional: missing or null is imputed.")
    return " ".join(parts)


def _number(f: Feature) -> Any:
    """A JSON number within the feature's range, whole if the feature counts something.

    Without a declared range the bound is ±(2**53 - 1), the largest integer a float holds
    exactly: far beyond any real count, duration or price, inside float32's range (past it the
    graph would compute infinities), and compared exactly with both integers and fractions
    (a bound like 1e38 is not: 1e38 + 1 rounds to 1e38 as a float).
    """
    bounds: dict[str, Any] = {
        "ge": f.minimum if f.minimum is not None else -MAX_SAFE_INTEGER,
        "le": f.maximum if f.maximum is not None else MAX_SAFE_INTEGER,
    }
    if f.integer:
        # pydantic's multiple_of has a tolerance that lets 1e-38 through: check exactly too.
        return Annotated[StrictFloat, Field(**bounds, multiple_of=1), AfterValidator(_count)]
    return Annotated[StrictFloat, Field(**bounds)]


def _kind(f: Feature) -> Any:
    """The strict pydantic type of one value of a feature."""
    if f.kind is FeatureKind.NUMERIC:
        return _number(f)
    if f.kind is FeatureKind.BOOLEAN:
        return StrictBool
    return Code if f.codes else StrictStr


def feature_field(f: Feature) -> tuple[Any, Any]:
    """The pydantic (annotation, default) of one feature: strict types, range, example."""
    kind = _kind(f)
    examples = [f.example] if f.example is not None else None
    info = Field(default=... if f.required else None, description=_describe(f), examples=examples)
    return (kind if f.required else kind | None, info)


def column_field(f: Feature, max_rows: int) -> tuple[Any, Any]:
    """One feature as a column: a list of its values, one per row (null where missing)."""
    value = _kind(f) if f.required else _kind(f) | None
    column: Any = Annotated[list[value], Field(min_length=1, max_length=max_rows)]  # type: ignore[valid-type]
    examples = [[f.example]] if f.example is not None else None
    info = Field(
        default=... if f.required else None,
        description=_describe(f)
        + " One value per row"
        + ("" if f.required else "; leave the column out if every row misses it")
        + ".",
        examples=examples,
    )
    # Not nullable: a column left out is missing in every row, a null is not a list of values.
    return (column, info)


class _Columns(BaseModel):
    """The base of a model's columns: every column given has one value per row."""

    # At least one column, said in the schema too; that they have one length JSON Schema cannot
    # say (the description does).
    model_config = ConfigDict(**_ROW_CONFIG, json_schema_extra={"minProperties": 1})

    @model_validator(mode="after")
    def _one_value_per_row(self) -> _Columns:
        lengths = {name: len(v) for name, v in self.__dict__.items() if v is not None}
        if not lengths:
            raise PydanticCustomError("no_columns", "send at least one column")
        if len(set(lengths.values())) > 1:
            usual = Counter(lengths.values()).most_common(1)[0][0]
            odd = ", ".join(f"{name} has {n}" for name, n in lengths.items() if n != usual)
            raise PydanticCustomError(
                "column_lengths",
                f"every column needs one value per row: most have {usual}, {odd}",
            )
        return self

    def __len__(self) -> int:
        return next(len(v) for v in self.__dict__.values() if v is not None)


def columns_model(name: str, features: list[Feature], max_rows: int) -> type[_Columns]:
    """{feature: [value per row]}: the rows of a batch as columns (as pandas'
    `DataFrame.to_dict("list")` writes them); unknown columns rejected."""
    fields = {f.name: column_field(f, max_rows) for f in features}
    model: type[_Columns] = _create_model(  # type: ignore[call-overload]
        name,
        __base__=_Columns,
        __doc__="One list of values per feature, every list with one value per row.",
        **fields,
    )
    return model


class _PredictBody(BaseModel):
    """The base of a /predict request: rows, or the same rows as columns."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _rows_or_columns(self) -> _PredictBody:
        given = [k for k in ("rows", "columns") if getattr(self, k) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "rows_or_columns",
                'send the rows either as "rows": [{feature: value, ...}, ...] or as '
                '"columns": {feature: [value per row], ...}' + (", not both" if given else ""),
            )
        return self


def row_model(name: str, features: list[Feature]) -> type[BaseModel]:
    """A model with one optional (or required) field per feature; unknown fields rejected."""
    fields = {f.name: feature_field(f) for f in features}
    model: type[BaseModel] = _create_model(name, __config__=_ROW_CONFIG, **fields)  # type: ignore[call-overload]
    return model


def _example_row(features: list[Feature]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in features:
        if f.example is None:
            continue
        if f.codes and isinstance(f.example, str) and f.example.isdigit():
            out[f.name] = int(f.example)
        else:
            out[f.name] = f.example
    return out


def schema_titles(names: list[str]) -> dict[str, str]:
    """The prefix of each model's schema names in /docs: "uci_online_shoppers" ->
    "UciOnlineShoppers". Names that would share one ("my-store", "my_store") keep it apart by
    a number, in name order, so no model's schema replaces another's."""
    titles: dict[str, str] = {}
    taken: set[str] = set()
    for name in sorted(names):
        base = "".join(part.capitalize() for part in re.split(r"[_.-]", name))
        title, n = base, 2
        while title in taken:
            title, n = f"{base}{n}", n + 1
        titles[name] = title
        taken.add(title)
    return titles


def predict_request_model(card: ModelCard, settings: Settings, title: str) -> type[BaseModel]:
    """{"rows": [row, ...]} or {"columns": {feature: [value, ...]}}, 1..max_rows rows."""
    row = row_model(f"{title}Row", card.features)
    columns: Any = columns_model(f"{title}Columns", card.features, settings.max_rows)
    rows_type: Any = Annotated[list[row], Field(min_length=1, max_length=settings.max_rows)]  # type: ignore[valid-type]
    example = _example_row(card.features)
    examples: list[Any] = [{"rows": [example]}, {"columns": {k: [v] for k, v in example.items()}}]
    base = type(
        f"{title}PredictBody",
        (_PredictBody,),
        {
            "model_config": ConfigDict(
                extra="forbid",
                # Exactly one of the two: what _rows_or_columns checks, said in the schema.
                json_schema_extra={
                    "examples": examples,
                    "oneOf": [{"required": ["rows"]}, {"required": ["columns"]}],
                },
            )
        },
    )
    model: type[BaseModel] = _create_model(
        f"{title}PredictRequest",
        __base__=base,
        # Not nullable: left out is None (defaults are not validated), an explicit null is not
        # a list of rows.
        rows=(
            rows_type,
            Field(default=None, description=f"1 to {settings.max_rows} rows of raw features"),
        ),
        columns=(
            columns,
            Field(
                default=None,
                description="the same rows as columns, one list per feature (instead of rows; "
                "smaller and faster to read for large batches)",
            ),
        ),
    )
    return model


def recommend_request_model(card: ModelCard, settings: Settings, title: str) -> type[BaseModel]:
    """A user (id and/or features), optional candidates and exclusions, and k."""
    non_item = [f for f in card.features if f.role in (FeatureRole.USER, FeatureRole.CONTEXT)]
    user = row_model(f"{title}UserFeatures", non_item)
    example: dict[str, Any] = {"features": _example_row(non_item), "k": settings.default_k}
    if card.users is not None:
        example = {"user_id": "u1", **example}
    ids = Annotated[
        list[Annotated[str, Field(min_length=1)]], Field(max_length=settings.max_candidates)
    ]
    fields: dict[str, Any] = {
        "user_id": (
            str | None,
            Field(
                default=None,
                min_length=1,
                description="look up the user's features in the bundle's user table",
            ),
        ),
        "features": (
            user | None,
            Field(default=None, description="user and context features (override the table)"),
        ),
        "candidates": (
            ids | None,
            Field(default=None, description="item ids to rank (default: the whole catalogue)"),
        ),
        "exclude": (ids, Field(default_factory=list, description="item ids never to return")),
        "k": (
            WholeNumber,
            Field(
                default=settings.default_k,
                ge=1,
                le=settings.max_k,
                strict=True,
                description=f"how many items to return (1..{settings.max_k})",
            ),
        ),
    }
    model: type[BaseModel] = _create_model(
        f"{title}RecommendRequest",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [example]}),
        **fields,
    )
    return model


class Prediction(BaseModel):
    probability: float = Field(description="predicted purchase probability")
    label: bool = Field(description="probability >= the model's threshold")


class PredictResponse(BaseModel):
    model: str
    version: str
    threshold: float
    predictions: list[Prediction]


class ScoredItem(BaseModel):
    item_id: str
    score: float = Field(description="predicted purchase probability for this user and item")


class RecommendResponse(BaseModel):
    model: str
    version: str
    user_id: str | None
    cold_start: bool = Field(description="the user id is not in the bundle's user table")
    items: list[ScoredItem]
    unknown_candidates: list[str] = Field(
        default_factory=list, description="candidate ids not in the catalogue, left out"
    )


class ModelSummary(BaseModel):
    name: str
    version: str
    default: bool
    created_at: str
    features: int
    catalog_items: int | None
    metrics: dict[str, float]


class ErrorDetail(BaseModel):
    field: str
    problem: str
    row: int | None = None


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorResponse(BaseModel):
    error: ErrorBody
