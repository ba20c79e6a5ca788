"""HTTP load with wrk on loopback: the server pinned to core 0, wrk to core 1; medians."""

from __future__ import annotations

import os
import re
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("WRK_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
"""
SERVER_CORE, CLIENT_CORE = "0", "1"


@dataclass(frozen=True)
class Run:
    requests_per_s: float
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Result:
    scenario: str
    connections: int
    rows: int
    runs: list[Run]

    @property
    def rps(self) -> float:
        return statistics.median(r.requests_per_s for r in self.runs)

    @property
    def p50(self) -> float:
        return statistics.median(r.p50_ms for r in self.runs)

    @property
    def p99(self) -> float:
        return statistics.median(r.p99_ms for r in self.runs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(
    command: list[str], port: int, ready_path: str, env: dict[str, str], cwd: Path, log: Path
) -> Iterator[str]:
    """Start a server pinned to SERVER_CORE; yield its base URL once `ready_path` answers 200."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *command],
            cwd=cwd,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{command[0]} exited: {log.read_text()[-3000:]}")
            try:
                if httpx.get(url + ready_path, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command} not ready after 120 s: {log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        raise RuntimeError(f"cannot read wrk's latency {value!r}")
    number, unit = match.groups()
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def wrk_command(script: Path, url: str, connections: int, seconds: int, *flags: str) -> list[str]:
    """wrk with one thread, pinned to CLIENT_CORE, running a Lua script against url."""
    return [
        "taskset", "-c", CLIENT_CORE, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
        *flags, "-s", str(script), url,
    ]  # fmt: skip


def wrk(url: str, body: bytes, connections: int, seconds: int) -> Run:
    """One wrk run pinned to CLIENT_CORE; refuses a run with any non-2xx answer or error."""
    with tempfile.TemporaryDirectory() as tmp:
        script, payload = Path(tmp) / "post.lua", Path(tmp) / "body.json"
        script.write_text(LUA)
        payload.write_bytes(body)
        out = subprocess.run(
            wrk_command(script, url, connections, seconds, "--latency"),
            env={**os.environ, "WRK_BODY": str(payload)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    if "Non-2xx" in out or "Socket errors" in out or "Latency Distribution" not in out:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    distribution = out.split("Latency Distribution", 1)[1]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", distribution, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", distribution, re.M).group(1))  # type: ignore[union-attr]
    return Run(rps, p50, p99)


def measure(
    url: str,
    body: bytes,
    scenario: str,
    rows: int,
    connections: list[int],
    seconds: int,
    repeats: int,
    check: int = 200,
) -> list[Result]:
    """Check the answer once, warm up, then `repeats` runs per connection count."""
    answer = httpx.post(url, content=body, headers={"content-type": "application/json"})
    if answer.status_code != check:
        raise RuntimeError(f"{scenario}: {url} answered {answer.status_code}: {answer.text[:500]}")
    wrk(url, body, connections[0], 3)
    results = []
    for c in connections:
        runs = [wrk(url, body, c, seconds) for _ in range(repeats)]
        results.append(Result(scenario, c, rows, runs))
        print(
            f"  {scenario} c={c}: {results[-1].rps:,.0f} req/s, p50 {results[-1].p50:.2f} ms, "
            f"p99 {results[-1].p99:.2f} ms",
            flush=True,
        )
    return results
