"""In-process cost of the JSON hot path of /predict: parsing and serialising, ours vs the default.

Ours: pydantic parses the raw bytes (model_validate_json) and orjson writes the answer.
FastAPI's default: json.loads, then model_validate, then jsonable_encoder and json.dumps.
Both run side by side in one process; the figures are medians of repeated timings.

    .venv/bin/python bench/hotpath.py [--models-dir models] [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import timeit
from pathlib import Path
from typing import Any

import orjson
from fastapi.encoders import jsonable_encoder

from app.card import ModelCard
from app.schemas import predict_request_model
from app.settings import Settings

ROW = {
    "Administrative": 2,
    "Administrative_Duration": 80.5,
    "Informational": 0,
    "Informational_Duration": 0.0,
    "ProductRelated": 32,
    "ProductRelated_Duration": 1195.0,
    "BounceRates": 0.02,
    "ExitRates": 0.04,
    "PageValues": 5.9,
    "SpecialDay": 0.0,
    "Month": "Nov",
    "OperatingSystems": 2,
    "Browser": 2,
    "Region": 1,
    "TrafficType": 2,
    "VisitorType": "Returning_Visitor",
    "Weekend": False,
}


def per_call_us(fn: Any, repeats: int) -> float:
    """Median microseconds per call over `repeats` timings of enough calls to last ~50 ms."""
    number, _ = timeit.Timer(fn).autorange()
    number = max(1, number // 4)
    runs = timeit.Timer(fn).repeat(repeat=repeats, number=number)
    return statistics.median(runs) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--model", default="uci_online_shoppers")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    card = ModelCard.model_validate_json((args.models_dir / args.model / "card.json").read_text())
    request_model = predict_request_model(card, Settings(), "UciOnlineShoppers")
    print("| step | rows | ours (µs) | FastAPI default (µs) | default / ours |")
    print("|---|---|---|---|---|")
    for rows in (1, 100, 1000):
        body = json.dumps({"rows": [ROW] * rows}).encode()
        ours = per_call_us(lambda b=body: request_model.model_validate_json(b), args.repeats)
        default = per_call_us(
            lambda b=body: request_model.model_validate(json.loads(b)), args.repeats
        )
        print(f"| parse + validate | {rows} | {ours:.1f} | {default:.1f} | {default / ours:.2f} |")
    for rows in (1, 100, 1000):
        payload = {
            "model": card.name,
            "version": card.version,
            "threshold": card.threshold,
            "predictions": [{"probability": 0.123456789, "label": False}] * rows,
        }
        ours = per_call_us(lambda p=payload: orjson.dumps(p), args.repeats)
        default = per_call_us(
            lambda p=payload: json.dumps(jsonable_encoder(p)).encode(), args.repeats
        )
        print(f"| serialise | {rows} | {ours:.1f} | {default:.1f} | {default / ours:.2f} |")


if __name__ == "__main__":
    main()
