"""Run every benchmark and write docs/benchmarks.md: `make bench` (not part of CI).

    .venv/bin/python bench/run.py [--seconds 20] [--repeats 3] [--no-peers]

HTTP load: wrk on loopback, each server pinned to core 0 and wrk to core 1, at 16 and 64
connections, the median of the repeats. Servers: a bare FastAPI endpoint (the floor), this
service, and, on the same ONNX model and the same rows, Seldon MLServer and BentoML, each from
its own virtual environment (bench/.venv-mlserver, bench/.venv-bentoml; `make bench` makes them).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.bundles import bench_models  # noqa: E402
from bench.load import Result, free_port, measure, server  # noqa: E402

UCI_CSV = ROOT.parent / "shared" / "data" / "online_shoppers_intention.csv"
CODES = ("OperatingSystems", "Browser", "Region", "TrafficType")
COUNTS = ("Administrative", "Informational", "ProductRelated")


def uci_rows(n: int) -> list[dict[str, Any]]:
    """Real UCI sessions when ../shared has them, else the card's example row repeated."""
    if not UCI_CSV.is_file():
        card = json.loads((ROOT / "models/uci_online_shoppers/card.json").read_text())
        return [{f["name"]: f["example"] for f in card["features"]}] * n
    rows = []
    with UCI_CSV.open(newline="") as fh:
        for raw in csv.DictReader(fh):
            row: dict[str, Any] = {}
            for k, v in raw.items():
                if k == "Revenue":
                    continue
                if k in CODES or k in COUNTS:
                    row[k] = int(v)
                elif k == "Weekend":
                    row[k] = v == "TRUE"
                elif k in ("Month", "VisitorType"):
                    row[k] = v
                else:
                    row[k] = float(v)
            rows.append(row)
            if len(rows) == n:
                break
    return rows


def v2_body(rows: list[dict[str, Any]]) -> bytes:
    """The same rows as an Open Inference Protocol (V2) request for the graph's two inputs."""
    card = json.loads((ROOT / "models/uci_online_shoppers/card.json").read_text())
    numbers = [f["name"] for f in card["features"] if f["kind"] != "categorical"]
    categories = [f["name"] for f in card["features"] if f["kind"] == "categorical"]
    inputs = [
        {
            "name": "numbers",
            "shape": [len(rows), len(numbers)],
            "datatype": "FP32",
            "data": [float(r[c]) for r in rows for c in numbers],
        },
        {
            "name": "categories",
            "shape": [len(rows), len(categories)],
            "datatype": "BYTES",
            "data": [str(r[c]) for r in rows for c in categories],
        },
    ]
    return json.dumps({"inputs": inputs}).encode()


def peer_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Integer codes as the strings the graph takes: the peers do no conversion of their own."""
    return [
        {
            k: (str(v) if k in CODES else float(v) if isinstance(v, bool) else v)
            for k, v in r.items()
        }
        for r in rows
    ]


def version_in(python: Path, package: str) -> str:
    if not python.exists():
        return "not installed"
    code = f"import importlib.metadata as m; print(m.version('{package}'))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "not installed"


def uvicorn_command(target: str, port: int, *flags: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        *flags,
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def bench_ours(models: Path, logs: Path, args: argparse.Namespace) -> dict[str, list[Result]]:
    rows = uci_rows(100)
    one = json.dumps({"rows": rows[:1]}).encode()
    hundred = json.dumps({"rows": rows}).encode()
    columns = json.dumps({"columns": {k: [r.get(k) for r in rows] for k in rows[0]}}).encode()
    rec = json.dumps({"user_id": "C00042", "k": 10}).encode()
    conns, seconds, repeats = args.connections, args.seconds, args.repeats
    results: dict[str, list[Result]] = {}
    # The concurrency cap is raised above the connections: this measures throughput, and a
    # request still counted while its connection already sent the next could draw a 503.
    env = {
        "PROPENSITY_MODELS_DIR": str(models),
        "PROPENSITY_DEFAULT_MODEL": "uci_online_shoppers",
        "PROPENSITY_MAX_K": "100",
        "PROPENSITY_MAX_CONCURRENCY": "1024",
    }
    port = free_port()
    app = uvicorn_command("app.main:create_app", port, "--factory")
    with server(app, port, "/health/ready", env, ROOT, logs / "ours.log") as url:
        answer = httpx.post(
            url + "/predict", content=one, headers={"content-type": "application/json"}
        ).content
        results["predict_1"] = measure(
            url + "/predict", one, "predict, 1 row", 1, conns, seconds, repeats
        )
        results["predict_100"] = measure(
            url + "/predict", hundred, "predict, 100 rows", 100, conns, seconds, repeats
        )
        results["predict_100_columns"] = measure(
            url + "/predict",
            columns,
            "predict, 100 rows as columns",
            100,
            conns,
            seconds,
            repeats,
        )
        for name, items in (("storefront_1k", 1_000), ("storefront_10k", 10_000)):
            results[f"recommend_{items}"] = measure(
                f"{url}/models/{name}/recommend",
                rec,
                f"recommend, {items:,} items",
                items,
                [1, *conns],
                seconds,
                repeats,
            )
    # Without an access line per request (ours at log level warning, uvicorn's
    # --no-access-log), to show what the logging costs each.
    port = free_port()
    app = uvicorn_command("app.main:create_app", port, "--factory")
    quiet = env | {"PROPENSITY_LOG_LEVEL": "warning"}
    with server(app, port, "/health/ready", quiet, ROOT, logs / "ours-quiet.log") as url:
        results["predict_1_quiet"] = measure(
            url + "/predict", one, "predict, 1 row, no access log", 1, conns, seconds, repeats
        )
    for key, label, flags in (
        ("bare", "bare FastAPI, constant answer", ()),
        ("bare_quiet", "bare FastAPI, no access log", ("--no-access-log",)),
    ):
        port = free_port()
        bare = uvicorn_command("bench.bare_app:app", port, *flags)
        with server(
            bare, port, "/docs", {"BARE_BODY": answer.decode()}, ROOT, logs / f"{key}.log"
        ) as url:
            results[key] = measure(url + "/predict", one, label, 1, conns, seconds, repeats)
    return results


def bench_peers(logs: Path, args: argparse.Namespace) -> dict[str, list[Result]]:
    rows = peer_rows(uci_rows(100))
    model = ROOT / "models/uci_online_shoppers/model.onnx"
    results: dict[str, list[Result]] = {}
    mls = ROOT / "bench/.venv-mlserver/bin"
    if (mls / "mlserver").exists():
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            port, grpc, metrics = free_port(), free_port(), free_port()
            (root / "settings.json").write_text(
                json.dumps(
                    {
                        "http_port": port,
                        "grpc_port": grpc,
                        "metrics_port": metrics,
                        "parallel_workers": 0,
                        "host": "127.0.0.1",
                    }
                )
            )
            (root / "model-settings.json").write_text(
                json.dumps(
                    {
                        "name": "uci",
                        "implementation": "mlserver_runtime.OnnxPropensity",
                        "parameters": {"uri": str(model)},
                    }
                )
            )
            (root / "mlserver_runtime.py").write_text(
                (ROOT / "bench/peers/mlserver_runtime.py").read_text()
            )
            with server(
                [str(mls / "mlserver"), "start", str(root)],
                port,
                "/v2/health/ready",
                {"PYTHONPATH": str(root)},
                root,
                logs / "mlserver.log",
            ) as url:
                endpoint = url + "/v2/models/uci/infer"
                results["mlserver_1"] = measure(
                    endpoint,
                    v2_body(rows[:1]),
                    "MLServer, 1 row",
                    1,
                    args.connections,
                    args.seconds,
                    args.repeats,
                )
                results["mlserver_100"] = measure(
                    endpoint,
                    v2_body(rows),
                    "MLServer, 100 rows",
                    100,
                    args.connections,
                    args.seconds,
                    args.repeats,
                )
    bento = ROOT / "bench/.venv-bentoml/bin"
    if (bento / "bentoml").exists():
        port = free_port()
        env = {
            "BENCH_ONNX_MODEL": str(model),
            "BENTOML_DO_NOT_TRACK": "true",
            "PYTHONPATH": str(ROOT / "bench/peers"),
        }
        command = [
            str(bento / "bentoml"),
            "serve",
            "bentoml_service:Propensity",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        with server(
            command, port, "/readyz", env, ROOT / "bench/peers", logs / "bentoml.log"
        ) as url:
            results["bentoml_1"] = measure(
                url + "/predict",
                json.dumps({"rows": rows[:1]}).encode(),
                "BentoML, 1 row",
                1,
                args.connections,
                args.seconds,
                args.repeats,
            )
            results["bentoml_100"] = measure(
                url + "/predict",
                json.dumps({"rows": rows}).encode(),
                "BentoML, 100 rows",
                100,
                args.connections,
                args.seconds,
                args.repeats,
            )
    return results


def machine() -> list[str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    wrk_version = subprocess.run(
        ["wrk", "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[0]
    return [
        f"- Machine: {os.cpu_count()} cores ({cpu}), Linux {platform.release()}",
        f"- Python {platform.python_version()}; fastapi {metadata.version('fastapi')}, "
        f"uvicorn {metadata.version('uvicorn')}, uvloop {metadata.version('uvloop')}, "
        f"httptools {metadata.version('httptools')}, onnxruntime {metadata.version('onnxruntime')}",
        f"- Peers: mlserver {version_in(ROOT / 'bench/.venv-mlserver/bin/python', 'mlserver')} "
        f"(uvloop {version_in(ROOT / 'bench/.venv-mlserver/bin/python', 'uvloop')}), "
        f"bentoml {version_in(ROOT / 'bench/.venv-bentoml/bin/python', 'bentoml')} "
        f"(uvloop {version_in(ROOT / 'bench/.venv-bentoml/bin/python', 'uvloop')}), each with "
        "uvloop and httptools installed",
        f"- Load: {wrk_version}",
    ]


def table(results: dict[str, list[Result]], keys: list[str]) -> list[str]:
    lines = [
        "| scenario | connections | requests/s | rows/s | p50 (ms) | p99 (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for key in keys:
        for r in results.get(key, []):
            lines.append(
                f"| {r.scenario} | {r.connections} | {r.rps:,.0f} | "
                f"{r.rps * r.rows:,.0f} | {r.p50:.2f} | {r.p99:.2f} |"
            )
    return lines


def ratios(results: dict[str, list[Result]]) -> list[str]:
    lines = [
        "| comparison | connections | throughput ratio | p99 ours / theirs (ms) |",
        "|---|---|---|---|",
    ]
    pairs = [
        ("predict_1", "bare", "/predict 1 row vs the bare FastAPI floor"),
        ("predict_1_quiet", "bare_quiet", "the same, neither writing an access log"),
    ]
    pairs += [
        (f"predict_{n}", f"{peer}_{n}", f"ours vs {label}, {n} row{'s' if n > 1 else ''}")
        for peer, label in (("mlserver", "MLServer"), ("bentoml", "BentoML"))
        for n in (1, 100)
    ]
    pairs += [
        ("predict_100_columns", "mlserver_100", "ours (columns) vs MLServer, 100 rows"),
        ("predict_100_columns", "bentoml_100", "ours (columns) vs BentoML, 100 rows"),
    ]
    for ours, theirs, label in pairs:
        for a, b in zip(results.get(ours, []), results.get(theirs, []), strict=False):
            lines.append(
                f"| {label} | {a.connections} | {a.rps / b.rps:.2f}x | {a.p99:.2f} / {b.p99:.2f} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks.md")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("the load benchmark pins server and wrk to two different cores")

    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    models = bench_models(ROOT / "models", logs / "models")
    print("in-process measurements", flush=True)
    inprocess = subprocess.run(
        [sys.executable, str(ROOT / "bench/inprocess.py"), "--models-dir", str(models)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    hotpath = subprocess.run(
        [sys.executable, str(ROOT / "bench/hotpath.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    print("HTTP load: this service and the floor", flush=True)
    results = bench_ours(models, logs, args)
    if not args.no_peers:
        print("HTTP load: peers", flush=True)
        results |= bench_peers(logs, args)

    command = f"make bench (bench/run.py --seconds {args.seconds} --repeats {args.repeats})"
    doc = [
        "# Benchmarks",
        "",
        f"Written by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Timings on a shared "
        "2-core machine are noisy: every comparison is measured side by side in one run, and "
        "every figure is a median over repeats.",
        "",
        *machine(),
        "",
        "## HTTP load",
        "",
        f"wrk on loopback; the server pinned to core 0 with `taskset`, wrk to core 1; "
        f"{args.seconds} s per run, the median of {args.repeats} runs; a 3 s warm-up first. Every "
        "server runs uvicorn with uvloop and httptools and its default logging; one process, one "
        "onnxruntime thread. Both the bare endpoint and the service write one access line per "
        "request (uvicorn's access log; the service's own); the rows marked \"no access log\" "
        "turn them off. Rows are real UCI sessions (17 raw features); `/recommend` ranks the "
        "storefront model's catalogue (400 items resampled to 1,000 and 10,000) for one user "
        "id, k = 10; at 1 connection its latency is the time in the server, without queueing.",
        "",
        *table(
            results,
            [
                "bare",
                "predict_1",
                "bare_quiet",
                "predict_1_quiet",
                "predict_100",
                "predict_100_columns",
                "recommend_1000",
                "recommend_10000",
            ],
        ),
        "",
        "### Against the floor and the peers (same ONNX model, same rows)",
        "",
        *ratios(results),
        "",
        *table(results, ["mlserver_1", "mlserver_100", "bentoml_1", "bentoml_100"]),
        "",
        "MLServer serves the model through a custom `MLModel` runtime (its recommended way for a "
        "model without a stock runtime) with `parallel_workers: 0`, over the V2 inference "
        "protocol (the graph's two input tensors). BentoML serves it from a `@bentoml.service` "
        "class that opens the session once, with rows as JSON objects, as this service takes "
        "them. See `bench/peers/`.",
        "",
        "## In-process",
        "",
        "`.venv/bin/python bench/inprocess.py`: onnxruntime alone, and each step of a request.",
        "",
        inprocess.strip(),
        "",
        "## The JSON hot path",
        "",
        "`.venv/bin/python bench/hotpath.py`: pydantic parsing the raw bytes and orjson writing "
        "the answer, against FastAPI's defaults (`json.loads` + `model_validate`, "
        "`jsonable_encoder` + `json.dumps`).",
        "",
        hotpath.strip(),
        "",
    ]
    args.out.write_text("\n".join(doc), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
