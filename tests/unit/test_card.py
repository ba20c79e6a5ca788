"""The model card contract: feature rules and the canonical spelling of categories."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from app.card import MISSING_CATEGORY, Feature, Missing, canonical_category


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, "3"),
        (3.0, "3"),
        ("3", "3"),
        (np.int64(3), "3"),
        (np.float32(2.0), "2"),
        (" Nov ", "Nov"),
        (2.5, "2.5"),
        (None, MISSING_CATEGORY),
        (math.nan, MISSING_CATEGORY),
        ("", MISSING_CATEGORY),
        (True, "true"),
    ],
)
def test_codes_and_strings_share_one_spelling(value: object, expected: str) -> None:
    assert canonical_category(value) == expected


def test_missing_defaults_follow_the_kind() -> None:
    assert Feature(name="x", kind="numeric", description="").imputation is Missing.MEDIAN
    assert Feature(name="c", kind="categorical", description="").imputation is Missing.CATEGORY
    assert Feature(name="b", kind="boolean", description="").imputation is Missing.MOST_FREQUENT


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "numeric", "transform": "log1p"}, "log1p needs minimum >= 0"),
        ({"kind": "numeric", "minimum": 2, "maximum": 1}, "minimum is above maximum"),
        ({"kind": "categorical", "minimum": 0}, "numeric features only"),
        ({"kind": "numeric", "values": ["a"]}, "categoricals only"),
        ({"kind": "numeric", "missing": "category"}, "does not fit kind"),
        ({"kind": "categorical", "values": [MISSING_CATEGORY]}, "reserved"),
        ({"kind": "numeric", "colour": "red"}, "colour"),
    ],
)
def test_inconsistent_features_are_refused_with_the_reason(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Feature.model_validate({"name": "f", "description": "", **fields})
