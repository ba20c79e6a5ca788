"""In-process costs: ONNX rows/s by batch size, and each step of a /predict and /recommend request.

    .venv/bin/python bench/inprocess.py [--models-dir models] [--repeats 7]

Prints Markdown tables; `bench/run.py` puts them into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import time
import timeit
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import orjson

from app.bundle import example_feeds, load_bundle
from app.schemas import predict_request_model
from app.scoring import columns_to_feeds, recommend, rows_to_feeds
from app.settings import Settings


def per_call_us(fn: Any, repeats: int) -> float:
    """Median µs per call over `repeats` timings of enough calls to last about 50 ms."""
    number, _ = timeit.Timer(fn).autorange()
    number = max(1, number // 4)
    return statistics.median(timeit.Timer(fn).repeat(repeat=repeats, number=number)) / number * 1e6


def session(model: bytes | str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def network_only(path: Path) -> bytes:
    """The network half of a merged graph (from its dense input to the probability)."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    # The first network node that reads a tensor the preprocessor made: the dense features.
    dense = next(
        i
        for n in model.graph.node
        if n.name.startswith("net/")
        for i in n.input
        if i and not i.startswith("net/")
    )
    extracted = onnx.utils.Extractor(model).extract_model([dense], ["probability"])
    return extracted.SerializeToString()


def example_row(card: Any) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for f in card.features:
        if f.example is not None:
            row[f.name] = int(f.example) if f.codes and str(f.example).isdigit() else f.example
    return row


def graph_table(models_dir: Path, names: list[str], repeats: int) -> list[str]:
    lines = [
        "| model | graph | batch | µs per call | rows/s |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        bundle = load_bundle(models_dir / name)
        merged = session(str(models_dir / name / "model.onnx"))
        net = session(network_only(models_dir / name / "model.onnx"))
        width = net.get_inputs()[0].shape[1]
        for batch in (1, 32, 1000, 100_000):
            feeds = example_feeds(bundle.card, batch)
            us = per_call_us(lambda f=feeds, s=merged: s.run(None, f), repeats)
            lines.append(
                f"| {name} | preprocessing + network | {batch:,} | {us:,.1f} | "
                f"{batch / us * 1e6:,.0f} |"
            )
            x = {net.get_inputs()[0].name: np.zeros((batch, width), dtype=np.float32)}
            us = per_call_us(lambda x=x, s=net: s.run(None, x), repeats)
            lines.append(
                f"| {name} | network alone | {batch:,} | {us:,.1f} | {batch / us * 1e6:,.0f} |"
            )
    return lines


def predict_steps(models_dir: Path, name: str, repeats: int) -> list[str]:
    bundle = load_bundle(models_dir / name)
    model = predict_request_model(bundle.card, Settings(), "Bench")
    lines = [
        "| rows | sent as | parse + validate | build arrays | run | serialise | total (µs) |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, shape in (
        (1, "rows"),
        (100, "rows"),
        (100, "columns"),
        (1000, "rows"),
        (1000, "columns"),
    ):
        rows = [example_row(bundle.card)] * n
        if shape == "rows":
            body = json.dumps({"rows": rows}).encode()
        else:
            body = json.dumps({"columns": {k: [r[k] for r in rows] for k in rows[0]}}).encode()
        payload = model.model_validate_json(body)
        if shape == "rows":
            feeds = rows_to_feeds(bundle, payload.rows)
            build = lambda p=payload: rows_to_feeds(bundle, p.rows)  # noqa: E731
        else:
            feeds = columns_to_feeds(bundle, payload.columns)
            build = lambda p=payload: columns_to_feeds(bundle, p.columns)  # noqa: E731
        probabilities = bundle.run(feeds)
        answer = {
            "model": name,
            "version": bundle.card.version,
            "threshold": 0.5,
            "predictions": [{"probability": p, "label": p >= 0.5} for p in probabilities.tolist()],
        }
        steps = [
            per_call_us(lambda b=body: model.model_validate_json(b), repeats),
            per_call_us(build, repeats),
            per_call_us(lambda f=feeds: bundle.run(f), repeats),
            per_call_us(lambda a=answer: orjson.dumps(a), repeats),
        ]
        lines.append(
            f"| {n:,} | {shape} | "
            + " | ".join(f"{s:,.1f}" for s in steps)
            + f" | {sum(steps):,.1f} |"
        )
    return lines


def asgi_scope(path: str, body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def asgi_us(app: Any, body: bytes, repeats: int, number: int = 5000) -> float:
    """Median µs per 1-row POST /predict through an ASGI app, without HTTP: the app's own cost
    (routing, middleware, the handler), with one turn of the event loop after each request."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def batch(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            await app(asgi_scope("/predict", body), receive, send)
            await asyncio.sleep(0)
        return (time.perf_counter() - started) / n * 1e6

    await batch(number // 5)
    timings = [await batch(number) for _ in range(repeats)]
    if set(statuses) != {200}:
        raise RuntimeError(f"/predict answered {sorted(set(statuses))}")
    return statistics.median(timings)


def whole_request(models_dir: Path, repeats: int) -> list[str]:
    """A 1-row /predict through the whole service in-process, against the bare endpoint."""
    import bare_app  # bench/bare_app.py, beside this script

    from app.main import create_app

    bundle = load_bundle(models_dir / "uci_online_shoppers")
    body = json.dumps({"rows": [example_row(bundle.card)]}).encode()
    settings = Settings(models_dir=models_dir, default_model="uci_online_shoppers")

    async def measure() -> tuple[float, float]:
        # The access log is on, as in the load benchmark, written to /dev/null.
        with Path(os.devnull).open("w") as devnull, contextlib.redirect_stderr(devnull):
            service = create_app(settings)
            async with service.router.lifespan_context(service):
                ours = await asgi_us(service, body, repeats)
        bare = await asgi_us(bare_app.app, body, repeats)
        return ours, bare

    ours, bare = asyncio.run(measure())
    logging.getLogger().handlers.clear()
    return [
        "| app | µs per request | requests/s of one core |",
        "|---|---|---|",
        f"| the service: middleware, validation, graph, answer | {ours:,.1f} | {1e6 / ours:,.0f} |",
        f"| bare FastAPI endpoint, constant answer | {bare:,.1f} | {1e6 / bare:,.0f} |",
    ]


def rank(bundle: Any) -> Any:
    return recommend(bundle, user_id="C00042", features=None, candidates=None, exclude=[], k=10)


def recommend_steps(models_dir: Path, names: list[str], repeats: int) -> list[str]:
    lines = []
    for name in names:
        bundle = load_bundle(models_dir / name)
        assert bundle.catalog is not None and bundle.users is not None
        without = replace(bundle, encoded=None)
        encoded = per_call_us(lambda b=bundle: rank(b), repeats)
        whole = per_call_us(lambda b=without: rank(b), repeats)
        n = len(bundle.catalog)
        lines.append(f"| {n:,} | {whole:,.0f} | {encoded:,.0f} | {n / encoded * 1e6:,.0f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print("### ONNX Runtime, one thread, by batch size\n")
    print(
        "\n".join(graph_table(args.models_dir, ["uci_online_shoppers", "storefront"], args.repeats))
    )
    print("\n### The steps of a /predict request (uci_online_shoppers, µs)\n")
    print("\n".join(predict_steps(args.models_dir, "uci_online_shoppers", args.repeats)))
    print("\n### A whole 1-row /predict request in-process, through the ASGI app (no HTTP)\n")
    print("\n".join(whole_request(args.models_dir, args.repeats)))
    print("\n### A whole /recommend ranking for one user id, k = 10, in-process (µs)\n")
    print("| catalogue | whole graph on every item | encoded catalogue + network | items/s |")
    print("|---|---|---|---|")
    names = [
        n
        for n in ("storefront", "storefront_1k", "storefront_10k")
        if (args.models_dir / n).is_dir()
    ]
    print("\n".join(recommend_steps(args.models_dir, names, args.repeats)))


if __name__ == "__main__":
    main()
