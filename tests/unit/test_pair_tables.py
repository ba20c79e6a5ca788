"""User-item tables in a bundle: read against the catalogue, looked up per user."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from app.bundle import BundleError, Table, read_pair_table
from app.card import MISSING_CATEGORY, PairTableInfo

CATALOG = Table(
    ids=np.array(["a", "b", "c"], dtype=object),
    index={"a": 0, "b": 1, "c": 2},
    columns={"category": np.array(["shoes", "hats", MISSING_CATEGORY], dtype=object)},
)


def _write(tmp_path: Path, name: str, text: str, **info: object) -> PairTableInfo:
    (tmp_path / name).write_text(text)
    return PairTableInfo.model_validate(
        {
            "file": name,
            "rows": text.count("\n") - 1,
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            **info,
        }
    )


def test_item_keyed_rows_fill_the_users_items_and_defaults_elsewhere(tmp_path: Path) -> None:
    info = _write(
        tmp_path,
        "ui.csv",
        "user,item,n\nu1,b,3\nu1,gone,9\nu2,a,1\n",
        user_key="user",
        key="item",
        features=["n"],
        default={"n": 0.0},
    )
    table = read_pair_table(tmp_path, info, CATALOG)
    assert table.values("u1", np.array([0, 1, 2]))["n"].tolist() == [0.0, 3.0, 0.0]
    assert table.values("u1", np.array([1]))["n"].tolist() == [3.0]
    assert table.values("nobody", np.array([0, 1]))["n"].tolist() == [0.0, 0.0]
    assert table.values(None, np.array([0]))["n"].tolist() == [0.0]


def test_category_keyed_rows_serve_every_item_of_the_category(tmp_path: Path) -> None:
    info = _write(
        tmp_path,
        "uc.csv",
        f"user,cat,share\nu1,shoes,0.75\nu1,{MISSING_CATEGORY},0.25\n",
        user_key="user",
        key="cat",
        match="category",
        features=["share"],
        default={"share": 0.0},
    )
    table = read_pair_table(tmp_path, info, CATALOG)
    assert table.values("u1", np.array([2, 0, 1]))["share"].tolist() == [0.25, 0.75, 0.0]


def test_a_tampered_table_is_refused(tmp_path: Path) -> None:
    info = _write(
        tmp_path,
        "ui.csv",
        "user,item,n\nu1,b,3\n",
        user_key="user",
        key="item",
        features=["n"],
        default={"n": 0.0},
    )
    (tmp_path / "ui.csv").write_text("user,item,n\nu1,b,300\n")
    with pytest.raises(BundleError, match="sha256 does not match"):
        read_pair_table(tmp_path, info, CATALOG)


def test_lookup_factors_the_same_values(tmp_path: Path) -> None:
    info = _write(
        tmp_path,
        "uc.csv",
        f"user,cat,share\nu1,shoes,0.75\nu1,{MISSING_CATEGORY},0.25\n",
        user_key="user",
        key="cat",
        match="category",
        features=["share"],
        default={"share": 0.0},
    )
    table = read_pair_table(tmp_path, info, CATALOG)
    for user in ("u1", "nobody", None):
        index = np.array([2, 0, 1, 0])
        row, distinct = table.lookup(user, index)
        assert distinct["share"][0] == 0.0  # entry 0 is the default
        assert distinct["share"][row].tolist() == table.values(user, index)["share"].tolist()
