"""The preprocessor: one output column per number or flag, one per learned category."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.card import MISSING_CATEGORY
from training.preprocess import build_preprocessor


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "views": [0.0, 1.0, 3.0, np.nan, 99.0],
            "rate": [0.1, 0.2, 0.3, 0.4, np.nan],
            "browser": ["1", "2", "2", "3", "1"],
            "device": ["mobile", "desktop", MISSING_CATEGORY, "mobile", "mobile"],
            "weekend": [1.0, 0.0, 0.0, np.nan, 0.0],
        }
    )


def test_output_columns_are_numbers_flags_and_learned_categories(tiny_spec) -> None:  # type: ignore[no-untyped-def]
    pre = build_preprocessor(tiny_spec).fit(_frame())
    names = list(pre.get_feature_names_out())
    assert len(names) == 2 + 1 + 3 + 3  # views, rate, weekend, browser 1/2/3, device x3
    assert any(n.endswith(f"device_{MISSING_CATEGORY}") for n in names)
    out = pre.transform(_frame())
    assert out.shape == (5, 9)
    assert not np.isnan(out).any()


def test_numbers_are_imputed_log_scaled_and_standardised(tiny_spec) -> None:  # type: ignore[no-untyped-def]
    frame = _frame()
    pre = build_preprocessor(tiny_spec).fit(frame)
    names = list(pre.get_feature_names_out())
    views = pre.transform(frame)[:, names.index("numeric_median_log1p__views")]
    logged = np.log1p([0.0, 1.0, 3.0, 2.0, 99.0])  # the missing value takes the median, 2
    np.testing.assert_allclose(views, (logged - logged.mean()) / logged.std(), atol=1e-12)


def test_unknown_category_is_encoded_as_all_zeros(tiny_spec) -> None:  # type: ignore[no-untyped-def]
    pre = build_preprocessor(tiny_spec).fit(_frame())
    names = list(pre.get_feature_names_out())
    row = _frame().head(1).assign(browser="77")
    encoded = pre.transform(row)[0]
    browser_cols = [i for i, n in enumerate(names) if "browser_" in n]
    assert encoded[browser_cols].sum() == 0.0


def test_missing_flag_takes_the_most_frequent_value(tiny_spec) -> None:  # type: ignore[no-untyped-def]
    pre = build_preprocessor(tiny_spec).fit(_frame())
    names = list(pre.get_feature_names_out())
    weekend = pre.transform(_frame())[:, [i for i, n in enumerate(names) if n.endswith("weekend")]]
    assert weekend.ravel().tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
