"""Purchase logs: column mapping, timestamps, and cleaning that counts what it removes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.errors import TrainingError
from training.events import (
    LogSpec,
    build_items,
    clean_log,
    load_log_spec,
    load_purchase_log,
    parse_timestamps,
)

SPEC = LogSpec.model_validate(
    {
        "name": "shop",
        "columns": {
            "user": "customer",
            "item": "sku",
            "timestamp": "when",
            "quantity": "qty",
            "price": "paid",
            "event": "kind",
        },
        "items": {"item": "sku", "category": "dept", "price": "list"},
    }
)


def _log() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer": ["a", "a", "b", None, "c", "c", "d", "e", "e", "f"],
            "sku": ["x", "y", "x", "x", "z", "z", "y", "x", "x", ""],
            "when": ["2026-01-01T10:00:00Z"] * 4
            + [
                "2026-01-02 09:00",
                "2026-01-02 09:00",
                "not a date",
                "2026-01-03",
                "2026-01-03",
                "2026-01-03",
            ],
            "qty": [1, 2, 1, 1, 1, 1, 1, -1, 1, 1],
            "paid": [10.0, 0.0, 10.0, 10.0, 5.0, 5.0, 7.0, 10.0, 10.0, 3.0],
            "kind": [
                "purchase",
                "purchase",
                "view",
                "purchase",
                "purchase",
                "purchase",
                "purchase",
                "purchase",
                "ORDER",
                "purchase",
            ],
        }
    )


def test_cleaning_counts_every_removed_line_and_why() -> None:
    clean, report = clean_log(_log(), SPEC)
    assert report.lines_read == 10
    assert report.removed == {
        "not a purchase event (views, carts, ...)": 1,
        "no user id": 1,
        "no item id": 1,
        "timestamp not understood": 1,
        "quantity not a number": 0,
        "quantity zero or negative (returns, cancellations)": 1,
        "duplicate line": 1,
    }
    assert report.purchases_kept == len(clean) == 4
    assert report.zero_price == 1
    assert np.isnan(clean.loc[(clean["user"] == "a") & (clean["item"] == "y"), "price"]).all()
    # Nothing vanished without a count.
    assert report.purchases_kept + sum(report.removed.values()) == report.lines_read


def test_event_names_match_without_regard_to_case() -> None:
    clean, _ = clean_log(_log(), SPEC)
    assert ("e", "x") in set(zip(clean["user"], clean["item"], strict=True))  # "ORDER"


@pytest.mark.parametrize(
    "values",
    [
        ["2026-03-01T12:00:00Z", "2026-03-01T13:30:00+01:30"],
        ["2026-03-01 12:00:00", "2026-03-01 12:00"],
        [1772366400, 1772366400],  # epoch seconds
        [1772366400000, 1772366400000],  # epoch milliseconds
    ],
)
def test_common_timestamp_formats_parse_to_utc(values: list[object]) -> None:
    parsed = parse_timestamps(pd.Series(values))
    assert (parsed == pd.Timestamp("2026-03-01T12:00:00Z")).all()


def test_day_first_dates_are_told_from_the_log_itself() -> None:
    day_first = parse_timestamps(pd.Series(["01/02/2026", "13/02/2026 10:00", "28.02.2026"]))
    assert [t.strftime("%m-%d") for t in day_first] == ["02-01", "02-13", "02-28"]
    month_first = parse_timestamps(pd.Series(["01/02/2026", "02/13/2026"]))
    assert [t.strftime("%m-%d") for t in month_first] == ["01-02", "02-13"]
    with pytest.raises(TrainingError, match="mix day-first and month-first dates"):
        parse_timestamps(pd.Series(["13/02/2026", "02/13/2026"]))


def test_a_store_export_maps_by_options_without_renaming(tmp_path: Path) -> None:
    spec_file = tmp_path / "shop.toml"
    spec_file.write_text('name = "shop"\n[columns]\nuser = "customer"\n')
    frame = _log().rename(columns={"when": "created"})
    frame.to_csv(tmp_path / "log.csv", index=False)
    spec = load_log_spec(
        spec_file, {"item": "sku", "timestamp": "created", "quantity": "qty", "event": "kind"}
    )
    plog = load_purchase_log(tmp_path / "log.csv", spec)
    assert plog.report.purchases_kept == 4
    assert set(plog.items["item"]) == {"x", "y", "z"}


def test_a_missing_mapped_column_is_named_with_the_fix() -> None:
    with pytest.raises(
        TrainingError, match=r"no column 'when' for the timestamp.*--timestamp-column"
    ):
        clean_log(_log().drop(columns=["when"]), SPEC)


def test_an_item_table_column_is_mapped_in_the_spec_and_can_be_absent() -> None:
    clean, report = clean_log(_log(), SPEC)
    table = pd.DataFrame({"sku": ["x", "y"], "list": [12.0, 4.0]})  # no category column
    with pytest.raises(TrainingError, match=r"no column 'dept' for the category.*\[items\]"):
        build_items(clean, table, SPEC, report)
    # TOML has no null: category = "" says there is none.
    no_category = SPEC.model_copy(
        update={
            "items": SPEC.items.model_validate({"item": "sku", "category": "", "price": "list"})
        }
    )
    items = build_items(clean, table, no_category, report).set_index("item")
    assert items["category"].isna().all() and items.loc["x", "price"] == 12.0


def test_items_missing_from_the_item_table_are_kept_and_counted() -> None:
    clean, report = clean_log(_log(), SPEC)
    table = pd.DataFrame({"sku": ["x", "y"], "dept": ["shoes", "hats"], "list": [12.0, 0.0]})
    items = build_items(clean, table, SPEC, report).set_index("item")
    assert report.items_without_attributes == 1  # z
    assert items.loc["z", "category"] is None
    assert items.loc["z", "price"] == 5.0  # the median price paid
    # A list price of 0 is not a price, and y's only kept sale had a zero price too: unknown.
    assert np.isnan(items.loc["y", "price"])
    assert items.loc["x", "price"] == 12.0


def test_prices_that_are_not_numbers_become_unknown_and_are_counted() -> None:
    raw = _log().astype({"paid": object})
    raw.loc[[0, 2], "paid"] = ["n/a", "12,50"]  # a kept line; a removed one (a view): not counted
    raw.loc[1, "paid"] = " "  # blank: simply not given
    clean, report = clean_log(raw, SPEC)
    assert report.unreadable_price == 1
    assert np.isnan(clean.loc[clean["user"] == "a", "price"]).all()
    table = pd.DataFrame({"sku": ["x", "y"], "dept": ["shoes", "hats"], "list": ["abc", 4.0]})
    items = build_items(clean, table, SPEC, report).set_index("item")
    assert report.unreadable_list_price == 1
    assert items.loc["y", "price"] == 4.0
    assert "prices that are not numbers, treated as unknown: 1" in report.lines()
    assert "item-table prices that are not numbers, treated as unknown: 1" in report.lines()


def test_a_log_with_nothing_left_is_refused() -> None:
    only_views = _log().assign(kind="view")
    with pytest.raises(TrainingError, match="no purchases left"):
        clean_log(only_views, SPEC)
