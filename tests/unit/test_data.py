"""Loading and validation: clear errors naming the column, and no row lost without a count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.card import MISSING_CATEGORY
from training.data import load_dataset, prepare, read_table
from training.errors import TrainingError
from training.spec import load_spec


def _table(**overrides: list[object]) -> pd.DataFrame:
    columns: dict[str, list[object]] = {
        "views": [1, 5, 0, 12],
        "rate": [0.1, 0.5, 0.0, 0.9],
        "browser": [1, 2, 2, 3],
        "device": ["mobile", "desktop", None, "mobile"],
        "weekend": ["TRUE", "FALSE", "true", "0"],
        "bought": [True, False, False, True],
    }
    columns.update(overrides)
    return pd.DataFrame(columns)


def test_features_come_out_in_the_types_the_graph_takes(tiny_spec) -> None:  # type: ignore[no-untyped-def]
    X, y, _, report = prepare(_table(), tiny_spec)
    assert X["views"].dtype == np.float64
    assert list(X["browser"]) == ["1", "2", "2", "3"]
    assert list(X["device"]) == ["mobile", "desktop", MISSING_CATEGORY, "mobile"]
    assert list(X["weekend"]) == [1.0, 0.0, 1.0, 0.0]
    assert list(y) == [1, 0, 0, 1]
    assert report.imputed["device"] == 1


def test_rows_without_a_label_are_dropped_and_counted(tiny_spec) -> None:  # type: ignore[no-untyped-def]
    X, y, _, report = prepare(_table(bought=[True, None, False, np.nan]), tiny_spec)
    assert len(X) == len(y) == 2
    assert report.rows_read == 4
    assert report.dropped_missing_label == 2
    assert report.rows_used == 2


def test_out_of_range_values_become_missing_and_are_counted(tiny_spec) -> None:  # type: ignore[no-untyped-def]
    X, _, _, report = prepare(_table(views=[-1, 5, 0, 12], rate=[0.1, 1.5, 0.0, 0.9]), tiny_spec)
    assert np.isnan(X["views"][0])
    assert np.isnan(X["rate"][1])
    assert report.out_of_range == {"views": 1, "rate": 1, "weekend": 0}
    assert report.imputed["views"] == 1


def test_missing_columns_are_all_named(tiny_spec) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TrainingError, match=r"missing column\(s\) 'bought', 'rate'"):
        prepare(_table().drop(columns=["rate", "bought"]), tiny_spec)


def test_text_in_a_numeric_column_names_column_value_and_row(tiny_spec) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(
        TrainingError, match=r"'views': 1 values are not numbers \(e.g. 'lots' in row 3\)"
    ):
        prepare(_table(views=[1, 5, "lots", 12]), tiny_spec)


def test_a_boolean_column_refuses_other_words(tiny_spec) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TrainingError, match="'weekend': 1 values are not booleans"):
        prepare(_table(weekend=["TRUE", "maybe", "true", "0"]), tiny_spec)


@pytest.mark.parametrize("label", [[0, 1, 2, 1], ["yes", "no", "perhaps", "yes"]])
def test_a_label_that_is_not_binary_is_refused(tiny_spec, label: list[object]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TrainingError, match="label 'bought' is not binary"):
        prepare(_table(bought=label), tiny_spec)


def test_a_label_with_one_class_is_refused(tiny_spec) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TrainingError, match="only one class"):
        prepare(_table(bought=[0, 0, 0, 0]), tiny_spec)


def test_empty_and_headless_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(TrainingError, match="the file is empty"):
        read_table(empty)
    header = tmp_path / "header.csv"
    header.write_text("a,b\n")
    with pytest.raises(TrainingError, match="no rows"):
        read_table(header)
    sheet = tmp_path / "x.xlsx"
    sheet.write_bytes(b"PK")
    with pytest.raises(TrainingError, match="unsupported format"):
        read_table(sheet)
    with pytest.raises(TrainingError, match="no such file"):
        read_table(tmp_path / "absent.csv")


def test_csv_and_parquet_load_the_same(tiny_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    frame = _table()
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    a = load_dataset(tmp_path / "t.csv", tiny_spec)
    b = load_dataset(tmp_path / "t.parquet", tiny_spec)
    pd.testing.assert_frame_equal(a.X, b.X)
    assert (a.y == b.y).all()
    assert a.sha256 != b.sha256


def test_the_uci_file_loads_whole(uci_csv: Path) -> None:
    ds = load_dataset(uci_csv, load_spec("uci_online_shoppers"))
    assert ds.report.rows_used == 12_330
    assert int(ds.y.sum()) == 1_908
    assert ds.report.duplicate_rows == 125
    assert not any(ds.report.imputed.values())
    assert set(ds.X["Month"]) <= {
        "Feb",
        "Mar",
        "May",
        "June",
        "Jul",
        "Aug",
        "Sep",
        "Oct",
        "Nov",
        "Dec",
    }
    assert set(ds.X["Browser"]) == {str(i) for i in range(1, 14)}
