"""Bundles for the load benchmark: the shipped models, and the storefront model over bigger
catalogues (its 400 items resampled under new ids, so the model, user and pair tables are real
and only the catalogue grows)."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path


def grow_catalogue(src: Path, dst: Path, items: int) -> Path:
    """A copy of the bundle at `src` whose catalogue has `items` rows."""
    shutil.copytree(src, dst)
    with (src / "catalog.csv").open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    with (dst / "catalog.csv").open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for k in range(items):
            row = list(rows[k % len(rows)])
            if k >= len(rows):
                row[0] = f"{row[0]}-{k // len(rows)}"
            writer.writerow(row)
    card = json.loads((dst / "card.json").read_text())
    card["name"] = dst.name
    data = (dst / "catalog.csv").read_bytes()
    card["catalog"].update(rows=items, sha256=hashlib.sha256(data).hexdigest())
    (dst / "card.json").write_text(json.dumps(card, indent=2))
    return dst


def bench_models(shipped: Path, root: Path) -> Path:
    """A models directory with the shipped bundles and storefront_1k / storefront_10k."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for bundle in ("storefront", "uci_online_shoppers"):
        shutil.copytree(shipped / bundle, root / bundle)
    grow_catalogue(shipped / "storefront", root / "storefront_1k", 1_000)
    grow_catalogue(shipped / "storefront", root / "storefront_10k", 10_000)
    return root
