"""Soak: saturate the service on loopback with wrk and watch errors and resident memory.

    .venv/bin/python bench/soak.py [--seconds 60] [--connections 256]

The server (`python -m app`, pinned to core 0) gets a warm-up, then `--seconds` of load from wrk
(pinned to core 1) over a mix of /predict (1 and 100 rows) and /recommend, with more connections
than its concurrency cap so that it must refuse some with 503. Passes when every answer is a 200
or a deliberate 503 and resident memory after the warm-up grew by at most 10%.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bundles import bench_models  # noqa: E402
from bench.load import free_port, server, wrk_command  # noqa: E402
from bench.run import uci_rows  # noqa: E402

# One request in four of each kind; wrk counts the answers by status.
LUA = """
local bodies = {}
local paths = {"/models/uci_online_shoppers/predict", "/models/uci_online_shoppers/predict",
               "/recommend", "/models/storefront_10k/recommend"}
local n = 0
local threads = {}
statuses = {}
setup = function(thread)
  table.insert(threads, thread)
end
init = function(args)
  for i = 1, 4 do
    local f = assert(io.open(os.getenv("SOAK_BODY_" .. i), "rb"))
    bodies[i] = f:read("*a")
    f:close()
  end
end
request = function()
  n = n + 1
  local i = (n % 4) + 1
  return wrk.format("POST", paths[i], {["Content-Type"] = "application/json"}, bodies[i])
end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      io.write(string.format("status %d %d\\n", status, count))
    end
  end
end
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def server_pid(port: int) -> int:
    """The process serving on `port`: the python whose environment names that port."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                environ = (proc / "environ").read_bytes()
            except OSError:
                continue
            if (
                f"PROPENSITY_PORT={port}".encode() in environ
                and b"python" in (proc / "cmdline").read_bytes()
            ):
                return int(proc.name)
    raise RuntimeError("server process not found")


def run_wrk(url: str, bodies: list[Path], connections: int, seconds: int) -> dict[int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "soak.lua"
        script.write_text(LUA)
        env = {**os.environ, **{f"SOAK_BODY_{i + 1}": str(b) for i, b in enumerate(bodies)}}
        out = subprocess.run(
            wrk_command(script, url, connections, seconds, "--timeout", "10s"),
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    print(out)
    if "Socket errors" in out:
        raise RuntimeError("wrk saw socket errors (connections refused, reset or timed out)")
    return {int(s): int(c) for s, c in re.findall(r"^status (\d+) (\d+)$", out, re.M)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=15)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--max-concurrency", type=int, default=64)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="soak-"))
    models = bench_models(ROOT / "models", work / "models")
    rows = uci_rows(100)
    bodies = []
    for i, payload in enumerate(
        [
            {"rows": rows[:1]},
            {"rows": rows},
            {"user_id": "C00042", "k": 10},
            {"user_id": "C01234", "k": 20},
        ]
    ):
        path = work / f"body{i}.json"
        path.write_text(json.dumps(payload))
        bodies.append(path)

    port = free_port()
    env = {
        "PROPENSITY_MODELS_DIR": str(models),
        "PROPENSITY_DEFAULT_MODEL": "storefront",
        "PROPENSITY_PORT": str(port),
        "PROPENSITY_HOST": "127.0.0.1",
        "PROPENSITY_MAX_CONCURRENCY": str(args.max_concurrency),
        "PROPENSITY_LOG_LEVEL": "warning",
    }
    with server(
        [sys.executable, "-m", "app"], port, "/health/ready", env, ROOT, work / "server.log"
    ) as url:
        pid = server_pid(port)
        print(f"warm-up {args.warmup} s")
        run_wrk(url, bodies, args.connections, args.warmup)
        before = rss_kib(pid)
        samples: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(5):
                samples.append(rss_kib(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        print(
            f"soak {args.seconds} s at {args.connections} connections "
            f"(cap {args.max_concurrency}); RSS after warm-up {before / 1024:.1f} MiB"
        )
        statuses = run_wrk(url, bodies, args.connections, args.seconds)
        stop.set()
        after = rss_kib(pid)
    growth = (after - before) / before
    total = sum(statuses.values())
    print(f"answers: {total:,} ({', '.join(f'{s}: {c:,}' for s, c in sorted(statuses.items()))})")
    print(
        f"RSS: {before / 1024:.1f} MiB after warm-up, {after / 1024:.1f} MiB after the soak "
        f"({growth:+.1%}); samples every 5 s: {[round(s / 1024, 1) for s in samples]}"
    )
    unexpected = {s: c for s, c in statuses.items() if s not in (200, 503)}
    ok = not unexpected and growth <= 0.10 and statuses.get(200, 0) > 0
    print("PASS" if ok else f"FAIL: unexpected statuses {unexpected}, RSS growth {growth:.1%}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
