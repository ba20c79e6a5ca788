"""Training config: defaults, file, then command-line overrides; bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import load_config
from training.errors import TrainingError


def test_defaults_are_the_reference_network() -> None:
    c = load_config(None)
    assert (c.layers, c.epochs, c.batch_size, c.validation_fraction) == ([32, 16], 10, 32, 0.2)


def test_command_line_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[train]\nepochs = 5\ndropout = 0.1\n")
    c = load_config(path, {"epochs": 7, "dropout": None})
    assert (c.epochs, c.dropout) == (7, 0.1)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"dropout": 1.5}, "dropout"),
        ({"layers": [32, 0]}, "at least one unit"),
        ({"class_weight": {"1": 2.0}}, "positive weight"),
        ({"epoch": 3}, "epoch"),
    ],
)
def test_bad_values_are_named(values: dict[str, object], message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        load_config(None, values)
