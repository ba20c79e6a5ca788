"""Shared fixtures: where the real data lives, and small frames built for each test."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UCI_CSV = ROOT.parent / "shared" / "data" / "online_shoppers_intention.csv"


@pytest.fixture(scope="session")
def uci_csv() -> Path:
    if not UCI_CSV.is_file():
        raise FileNotFoundError(f"the UCI data is expected at {UCI_CSV} (see ../shared/data)")
    return UCI_CSV


@pytest.fixture
def tiny_spec():  # type: ignore[no-untyped-def]
    """A spec with one feature of every treatment, for tests that build their own tables."""
    from training.spec import DatasetSpec

    return DatasetSpec.model_validate(
        {
            "name": "tiny",
            "label": "bought",
            "features": [
                {
                    "name": "views",
                    "kind": "numeric",
                    "description": "page views",
                    "minimum": 0,
                    "transform": "log1p",
                    "integer": True,
                },
                {
                    "name": "rate",
                    "kind": "numeric",
                    "description": "a rate",
                    "minimum": 0,
                    "maximum": 1,
                },
                {"name": "browser", "kind": "categorical", "description": "code", "codes": True},
                {
                    "name": "device",
                    "kind": "categorical",
                    "description": "device",
                    "values": ["mobile", "desktop"],
                },
                {"name": "weekend", "kind": "boolean", "description": "weekend"},
            ],
        }
    )
