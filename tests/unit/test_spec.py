"""Dataset specs: the shipped ones parse, and a broken one says what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.card import FeatureKind, FeatureRole, Transform
from training.errors import TrainingError
from training.spec import load_spec


def test_uci_integer_codes_are_categories_and_flags_are_booleans() -> None:
    spec = load_spec("uci_online_shoppers")
    assert spec.label == "Revenue"
    assert len(spec.features) == 17
    for name in ("OperatingSystems", "Browser", "Region", "TrafficType"):
        feature = next(f for f in spec.features if f.name == name)
        assert feature.kind is FeatureKind.CATEGORICAL
        assert feature.codes
    weekend = next(f for f in spec.features if f.name == "Weekend")
    assert weekend.kind is FeatureKind.BOOLEAN
    durations = [f for f in spec.features if f.name.endswith("_Duration")]
    assert durations
    assert all(f.transform is Transform.LOG1P for f in durations)


def test_synthetic_spec_leaves_the_true_probability_out() -> None:
    spec = load_spec("synthetic_sessions")
    assert "true_probability" not in spec.feature_names
    assert {f.role for f in spec.features} == {FeatureRole.CONTEXT, FeatureRole.USER}


def test_spec_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        'name = "x"\nlabel = "y"\n[[features]]\nname = "a"\nkind = "numbr"\ndescription = ""\n'
    )
    with pytest.raises(TrainingError, match=r"features\.0\.kind"):
        load_spec(path)


def test_label_listed_as_a_feature_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        'name = "x"\nlabel = "a"\n[[features]]\nname = "a"\nkind = "numeric"\ndescription = ""\n'
    )
    with pytest.raises(TrainingError, match="also listed as a feature"):
        load_spec(path)


def test_missing_and_malformed_spec_files(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="no such file"):
        load_spec(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("name = ")
    with pytest.raises(TrainingError, match="not valid TOML"):
        load_spec(broken)
