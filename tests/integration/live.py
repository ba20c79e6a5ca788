"""A real service process (`python -m app`) on a free loopback port, for tests that need one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_service(
    log: Path, port: int | None = None, uvicorn: bool = False, **settings: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the service with PROPENSITY_* settings (names lower-case, without the prefix) and
    wait until it is ready; returns the process and its base URL.

    It runs `python -m app`, or with `uvicorn` the app factory under uvicorn's own command line.
    """
    port = port or free_port()
    env = {
        **os.environ,
        "PROPENSITY_MODELS_DIR": str(ROOT / "models"),
        "PROPENSITY_HOST": "127.0.0.1",
        "PROPENSITY_PORT": str(port),
        **{f"PROPENSITY_{k.upper()}": v for k, v in settings.items()},
    }
    command = [sys.executable, "-m", "app"]
    if uvicorn:
        command = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app"]
        command += ["--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the service was not ready within 60 s:\n{log.read_text()}")


def stop_service(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
