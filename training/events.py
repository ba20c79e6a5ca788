"""Purchase logs: the log spec (column mapping, windows), loading, and cleaning with counts."""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from training.data import read_table
from training.errors import TrainingError

log = logging.getLogger(__name__)


def _none_if_blank(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class LogColumns(BaseModel):
    """Where our names are found in the store's export."""

    model_config = ConfigDict(extra="forbid")

    user: str = "user_id"
    item: str = "item_id"
    timestamp: str = "timestamp"
    quantity: str | None = None
    price: str | None = None
    event: str | None = None
    purchase_events: list[str] = ["purchase", "order", "transaction", "buy"]

    @field_validator("quantity", "price", "event", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return _none_if_blank(value)


class ItemColumns(BaseModel):
    """Where our names are found in the optional item table."""

    model_config = ConfigDict(extra="forbid")

    item: str = "item_id"
    category: str | None = "category"
    price: str | None = "price"

    @field_validator("category", "price", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        # TOML has no null: category = "" says the item table has no category column.
        return _none_if_blank(value)


class Windows(BaseModel):
    """How training pairs are cut from the log."""

    model_config = ConfigDict(extra="forbid")

    horizon_days: int = Field(default=14, ge=1, description="purchases after a cutoff to predict")
    cutoffs: int = Field(default=4, ge=2, description="stacked cutoffs; the last one is the test")
    negatives: int = Field(default=4, ge=1, description="sampled non-purchases per purchase")
    recent_days: int = Field(default=30, ge=1, description="window of 'recent' popularity")


class LogSpec(BaseModel):
    """A purchase-log dataset: its columns, its item table's columns and its windows."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    source: str | None = None
    columns: LogColumns = LogColumns()
    items: ItemColumns = ItemColumns()
    windows: Windows = Windows()


SPEC_DIR = Path(__file__).parent / "specs"


def load_log_spec(path: str | Path, overrides: dict[str, str | None] | None = None) -> LogSpec:
    """Read a log spec (a shipped name or a path); `overrides` map column roles to names."""
    p = Path(path)
    if not p.exists() and p.suffix == "" and (SPEC_DIR / f"{p.name}.toml").exists():
        p = SPEC_DIR / f"{p.name}.toml"
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainingError(f"spec {p}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise TrainingError(f"spec {p}: not valid TOML ({exc})") from None
    columns = raw.setdefault("columns", {})
    columns.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return LogSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise TrainingError(f"spec {p}: {problems}") from None


@dataclass
class LogReport:
    """What cleaning removed from the log, and why, with counts."""

    lines_read: int = 0
    purchases_kept: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    zero_price: int = 0
    unreadable_price: int = 0
    unreadable_list_price: int = 0
    items_without_attributes: int = 0

    def lines(self) -> list[str]:
        out = [f"log lines read: {self.lines_read}", f"purchases kept: {self.purchases_kept}"]
        out += [f"removed, {why}: {n}" for why, n in self.removed.items() if n]
        if self.zero_price:
            out.append(f"zero or negative prices, treated as unknown: {self.zero_price}")
        if self.unreadable_price:
            out.append(f"prices that are not numbers, treated as unknown: {self.unreadable_price}")
        if self.unreadable_list_price:
            out.append(
                "item-table prices that are not numbers, treated as unknown: "
                f"{self.unreadable_list_price}"
            )
        if self.items_without_attributes:
            out.append(f"items bought but not in the item table: {self.items_without_attributes}")
        return out


@dataclass(frozen=True)
class PurchaseLog:
    """Clean purchases (user, item, time, quantity, price) and the item catalogue."""

    purchases: pd.DataFrame  # user: str, item: str, time: datetime64[UTC], quantity, price
    items: pd.DataFrame  # item: str (unique), category: str|None, price: float
    report: LogReport
    sha256: str
    file: str


def parse_timestamps(values: pd.Series) -> pd.Series:
    """ISO strings (with or without zone), common date formats, or epoch seconds, to UTC."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        stamps = pd.to_datetime(values, utc=True)
    elif pd.api.types.is_numeric_dtype(values.dtype):
        in_ms = values.dropna().abs().median() > 1e11
        stamps = pd.to_datetime(values, unit="ms" if in_ms else "s", utc=True, errors="coerce")
    else:
        dayfirst = _day_first(values)
        stamps = pd.to_datetime(
            values, utc=True, errors="coerce", format="mixed", dayfirst=dayfirst
        )
    return stamps


# 03/04/2026, 3.4.26, 03-04-2026 ...: day and month in an order the text alone does not tell.
_NUMERIC_DATE = r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}\b"


def _day_first(values: pd.Series) -> bool:
    """Whether dates like 03/04/2026 put the day first: told by the dates whose first or second
    number is over 12. A log that has both kinds is refused rather than half misread."""
    parts = values.astype("string").str.extract(_NUMERIC_DATE).dropna().astype(int)
    if parts.empty:
        return False
    first_is_day = parts[0] > 12
    second_is_day = parts[1] > 12
    if first_is_day.any() and second_is_day.any():
        a = values[first_is_day[first_is_day].index[0]]
        b = values[second_is_day[second_is_day].index[0]]
        raise TrainingError(
            f"timestamps mix day-first and month-first dates ({a!r} and {b!r}); export them in "
            "one format, ideally ISO 8601 (2026-04-03T10:00:00Z)"
        )
    if not first_is_day.any() and not second_is_day.any():
        log.warning(
            "dates like %r could be day/month or month/day; read as month/day. Export ISO 8601 "
            "dates if that is wrong",
            values[parts.index[0]],
        )
    return bool(first_is_day.any())


def _numbers(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce")


def _unreadable(raw: pd.Series, parsed: pd.Series) -> int:
    """Values given (not blank) that are not numbers: "n/a", "abc", "12,50"."""
    given = raw.notna() & (raw.astype("string").str.strip() != "")
    return int((given & parsed.reindex(raw.index).isna()).sum())


def _column(
    frame: pd.DataFrame, name: str | None, role: str, source: str, hint: str | None = None
) -> pd.Series | None:
    if name is None:
        return None
    if name not in frame.columns:
        hint = hint or f"map it with --{role}-column or the spec's [columns]"
        raise TrainingError(
            f"{source}: no column {name!r} for the {role} (columns: "
            f"{', '.join(map(str, frame.columns))}); {hint}"
        )
    return frame[name]


def clean_log(
    raw: pd.DataFrame, spec: LogSpec, source: str = "log"
) -> tuple[pd.DataFrame, LogReport]:
    """Purchases only, each a valid line: the report counts everything removed and why."""
    c = spec.columns
    report = LogReport(lines_read=len(raw))
    if len(raw) == 0:
        raise TrainingError(f"{source}: no lines")
    user = _column(raw, c.user, "user", source)
    item = _column(raw, c.item, "item", source)
    stamp = _column(raw, c.timestamp, "timestamp", source)
    assert user is not None and item is not None and stamp is not None
    quantity = _column(raw, c.quantity, "quantity", source)
    price = _column(raw, c.price, "price", source)
    event = _column(raw, c.event, "event", source)

    frame = pd.DataFrame(
        {
            "user": user.astype("string").str.strip(),
            "item": item.astype("string").str.strip(),
            "time": parse_timestamps(stamp),
            "quantity": pd.to_numeric(quantity, errors="coerce") if quantity is not None else 1.0,
            "price": _numbers(price) if price is not None else np.nan,
        }
    )
    keep = pd.Series(True, index=frame.index)

    def drop(mask: pd.Series, why: str) -> None:
        nonlocal keep
        hit = keep & mask
        report.removed[why] = int(hit.sum())
        keep &= ~mask

    if event is not None:
        wanted = {e.lower() for e in c.purchase_events}
        drop(
            ~event.astype("string").str.strip().str.lower().isin(wanted).fillna(False),
            "not a purchase event (views, carts, ...)",
        )
    drop(frame["user"].isna() | (frame["user"] == ""), "no user id")
    drop(frame["item"].isna() | (frame["item"] == ""), "no item id")
    drop(frame["time"].isna(), "timestamp not understood")
    drop(frame["quantity"].isna(), "quantity not a number")
    drop(frame["quantity"] <= 0, "quantity zero or negative (returns, cancellations)")
    drop(frame.duplicated() & keep, "duplicate line")
    frame = frame[keep].copy()
    if len(frame) == 0:
        raise TrainingError(f"{source}: no purchases left after cleaning ({report.removed})")
    if price is not None:
        report.unreadable_price = _unreadable(price[keep], frame["price"])
    bad_price = ~(frame["price"] > 0)
    report.zero_price = int((bad_price & frame["price"].notna()).sum())
    frame.loc[bad_price, "price"] = np.nan
    frame = frame.sort_values("time", kind="stable").reset_index(drop=True)
    frame["user"] = frame["user"].astype(str)
    frame["item"] = frame["item"].astype(str)
    report.purchases_kept = len(frame)
    return frame, report


def build_items(
    purchases: pd.DataFrame, table: pd.DataFrame | None, spec: LogSpec, report: LogReport
) -> pd.DataFrame:
    """One row per item seen in the table or the log: category and price (the list price, or the
    median price paid)."""
    paid = purchases.groupby("item")["price"].median()
    if table is not None:
        ic = spec.items
        hint = "map it in the spec's [items] table"
        ids = _column(table, ic.item, "item", "item table", hint)
        assert ids is not None
        cat = _column(table, ic.category, "category", "item table", hint)
        lst = _column(table, ic.price, "price", "item table", hint)
        listed = (
            pd.DataFrame(
                {
                    "item": ids.astype("string").str.strip(),
                    "category": cat.astype("string") if cat is not None else pd.NA,
                    "price": _numbers(lst) if lst is not None else np.nan,
                }
            )
            .dropna(subset=["item"])
            .drop_duplicates("item", keep="last")
        )
        if lst is not None:
            report.unreadable_list_price = _unreadable(lst.loc[listed.index], listed["price"])
        listed["item"] = listed["item"].astype(str)
    else:
        listed = pd.DataFrame(
            {
                "item": pd.Series(dtype=str),
                "category": pd.Series(dtype="string"),
                "price": pd.Series(dtype=float),
            }
        )
    unlisted = sorted(set(purchases["item"]) - set(listed["item"]))
    report.items_without_attributes = len(unlisted) if table is not None else 0
    extra = pd.DataFrame({"item": unlisted, "category": pd.NA, "price": np.nan})
    items = pd.concat([listed, extra], ignore_index=True)
    items["price"] = items["price"].where(items["price"] > 0)
    items["price"] = items["price"].fillna(items["item"].map(paid))
    items["category"] = items["category"].astype(object).where(items["category"].notna(), None)
    return items.sort_values("item", kind="stable").reset_index(drop=True)


def load_purchase_log(
    path: str | Path, spec: LogSpec, items_path: str | Path | None = None
) -> PurchaseLog:
    """Read, clean and describe a purchase log and its optional item table."""
    from training.data import file_sha256

    p = Path(path)
    purchases, report = clean_log(read_table(p), spec, source=f"log {p}")
    table = read_table(items_path) if items_path is not None else None
    items = build_items(purchases, table, spec, report)
    for line in report.lines():
        log.info("%s", line)
    return PurchaseLog(purchases, items, report, file_sha256(p), p.name)
