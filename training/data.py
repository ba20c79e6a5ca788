"""Loading a table (CSV or Parquet) and checking it against a dataset spec."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from app.card import MISSING_CATEGORY, Feature, FeatureKind, canonical_category
from training.errors import TrainingError
from training.spec import DatasetSpec

log = logging.getLogger(__name__)

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


@dataclass
class CleaningReport:
    """What loading did to the rows and values it was given, with counts."""

    rows_read: int = 0
    rows_used: int = 0
    dropped_missing_label: int = 0
    duplicate_rows: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    imputed: dict[str, int] = field(default_factory=dict)  # missing values, imputed by the graph
    out_of_range: dict[str, int] = field(default_factory=dict)  # set to missing, then imputed

    def lines(self) -> list[str]:
        out = [
            f"rows read: {self.rows_read}",
            f"rows dropped for a missing label: {self.dropped_missing_label}",
            f"rows used: {self.rows_used} ({self.duplicate_rows} exact duplicates kept)",
        ]
        out += [
            f"{c}: {n} values outside the spec's range, treated as missing"
            for c, n in self.out_of_range.items()
            if n
        ]
        out += [f"{c}: {n} missing values, imputed" for c, n in self.imputed.items() if n]
        if self.ignored_columns:
            out.append(f"columns not in the spec, ignored: {', '.join(self.ignored_columns)}")
        return out


@dataclass
class Dataset:
    """Features in canonical types (floats with NaN, strings with the missing marker) and labels."""

    X: pd.DataFrame
    y: np.ndarray
    report: CleaningReport
    sha256: str
    file: str
    extra: pd.DataFrame | None = None  # columns the caller asked to keep (e.g. true probabilities)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file; the format follows the suffix."""
    p = Path(path)
    if not p.is_file():
        raise TrainingError(f"data {p}: no such file")
    suffixes = [s.lower() for s in p.suffixes]
    try:
        if suffixes and suffixes[-1] in {".parquet", ".pq"}:
            df = pd.read_parquet(p)
        elif ".csv" in suffixes or ".tsv" in suffixes:
            df = pd.read_csv(p, sep="\t" if ".tsv" in suffixes else ",", low_memory=False)
        else:
            raise TrainingError(f"data {p}: unsupported format; use .csv, .csv.gz or .parquet")
    except pd.errors.EmptyDataError:
        raise TrainingError(f"data {p}: the file is empty") from None
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        raise TrainingError(f"data {p}: cannot be read ({exc})") from None
    if len(df) == 0:
        raise TrainingError(f"data {p}: the file has a header but no rows")
    return df


def _parse_bool(col: pd.Series, name: str) -> pd.Series:
    """True/False, 1/0, yes/no in any case; missing stays NaN; anything else is an error."""
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.astype("float64")
    text = col.astype("string").str.strip().str.lower()
    out = pd.Series(np.nan, index=col.index, dtype="float64")
    out[text.isin(_TRUE).fillna(False).to_numpy(bool)] = 1.0
    out[text.isin(_FALSE).fillna(False).to_numpy(bool)] = 0.0
    bad = text.notna() & (text != "") & out.isna()
    if bad.any():
        first = bad.to_numpy().nonzero()[0][0]
        raise TrainingError(
            f"column {name!r}: {int(bad.sum())} values are not booleans "
            f"(e.g. {col.iloc[first]!r} in row {first + 1}); use true/false, 1/0 or yes/no"
        )
    return out


def _parse_numeric(col: pd.Series, feature: Feature) -> pd.Series:
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.astype("float64")
    num = pd.to_numeric(col, errors="coerce").astype("float64")
    present = col.notna() & (col.astype("string").str.strip() != "")
    bad = present & num.isna()
    if bad.any():
        first = bad.to_numpy().nonzero()[0][0]
        raise TrainingError(
            f"column {feature.name!r}: {int(bad.sum())} values are not numbers "
            f"(e.g. {col.iloc[first]!r} in row {first + 1})"
        )
    return num.where(np.isfinite(num))


def _parse_label(col: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        values = set(np.unique(col.dropna().to_numpy()))
        if not values <= {0, 1}:
            shown = ", ".join(str(v) for v in sorted(values)[:5])
            raise TrainingError(f"label {name!r} is not binary: it holds {shown}")
        return col.astype("float64")
    try:
        return _parse_bool(col, name)
    except TrainingError:
        shown = ", ".join(repr(v) for v in col.dropna().unique()[:5])
        raise TrainingError(f"label {name!r} is not binary: it holds {shown}") from None


def canonical_features(df: pd.DataFrame, spec: DatasetSpec, report: CleaningReport) -> pd.DataFrame:
    """Each feature in the type the graph takes: float64 (NaN missing) or str (marker missing)."""
    out: dict[str, pd.Series] = {}
    for f in spec.features:
        col = df[f.name]
        if f.kind is FeatureKind.CATEGORICAL:
            values = col.astype(object).where(col.notna(), None)
            out[f.name] = pd.Series(
                [canonical_category(v) for v in values], index=df.index, dtype=object
            )
            report.imputed[f.name] = int((out[f.name] == MISSING_CATEGORY).sum())
            continue
        series = (
            _parse_bool(col, f.name) if f.kind is FeatureKind.BOOLEAN else _parse_numeric(col, f)
        )
        outside = pd.Series(False, index=df.index)
        if f.minimum is not None:
            outside |= series < f.minimum
        if f.maximum is not None:
            outside |= series > f.maximum
        report.out_of_range[f.name] = int(outside.sum())
        series = series.mask(outside)
        report.imputed[f.name] = int(series.isna().sum())
        out[f.name] = series
    return pd.DataFrame(out, index=df.index)


def prepare(
    df: pd.DataFrame, spec: DatasetSpec, keep: tuple[str, ...] = (), *, source: str = "data"
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame | None, CleaningReport]:
    """Check a raw table against the spec; return canonical features, labels and a report."""
    report = CleaningReport(rows_read=len(df))
    if len(df) == 0:
        raise TrainingError(f"{source}: no rows")
    needed = [spec.label, *spec.feature_names, *keep]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise TrainingError(f"{source}: missing column(s) {', '.join(map(repr, missing))}")
    report.ignored_columns = [c for c in df.columns if c not in needed]

    label = _parse_label(df[spec.label], spec.label)
    has_label = label.notna()
    report.dropped_missing_label = int((~has_label).sum())
    df = df.loc[has_label]
    label = label[has_label]
    if len(df) == 0:
        raise TrainingError(f"{source}: every row lacks a label ({spec.label!r})")
    if label.nunique() < 2:
        raise TrainingError(f"label {spec.label!r} has only one class ({int(label.iloc[0])})")

    X = canonical_features(df, spec, report).reset_index(drop=True)
    for name in X.columns[X.isna().all().to_numpy()]:
        log.warning(
            "%s: column %r has no usable value (all missing or outside the spec's range): it is "
            "imputed in every row and cannot inform the model",
            source,
            name,
        )
    report.rows_used = len(X)
    report.duplicate_rows = int(df.duplicated().sum())
    extra = df[list(keep)].reset_index(drop=True) if keep else None
    return X, label.to_numpy(dtype=np.int8), extra, report


def load_dataset(path: str | Path, spec: DatasetSpec, keep: tuple[str, ...] = ()) -> Dataset:
    """Read a file, check it against the spec and log what cleaning did."""
    p = Path(path)
    df = read_table(p)
    X, y, extra, report = prepare(df, spec, keep, source=f"data {p}")
    for line in report.lines():
        log.info("%s", line)
    return Dataset(X=X, y=y, report=report, sha256=file_sha256(p), file=p.name, extra=extra)
