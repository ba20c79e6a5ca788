"""SIGTERM against a real server (`python -m app`): requests in flight finish, then it exits."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_server import free_port

ROOT = Path(__file__).resolve().parents[2]
ROW = {"PageValues": 12.5, "Month": "Nov", "Browser": 2}


def _start(port: int, grace: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PROPENSITY_MODELS_DIR": str(ROOT / "models"),
        "PROPENSITY_DEFAULT_MODEL": "uci_online_shoppers",
        "PROPENSITY_HOST": "127.0.0.1",
        "PROPENSITY_PORT": str(port),
        "PROPENSITY_SHUTDOWN_GRACE_SECONDS": str(grace),
    }
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(log.read_text())
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("not ready within 60 s")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes], Path]]:
    port, log = free_port(), tmp_path / "server.log"
    proc = _start(port, grace=3, log=log)
    yield port, proc, log
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _half_sent(port: int) -> tuple[socket.socket, bytes]:
    """A /predict request whose headers and half its body have reached the server."""
    body = json.dumps({"rows": [ROW]}).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        f"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body[: len(body) // 2])
    return sock, body[len(body) // 2 :]


def _read_response(sock: socket.socket) -> tuple[int, dict[str, object]]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


def test_a_request_in_flight_at_sigterm_is_answered(server) -> None:  # type: ignore[no-untyped-def]
    port, proc, log = server
    sock, rest = _half_sent(port)
    time.sleep(0.5)  # the server has the request's headers: it is in flight
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(OSError):  # no new connections once the signal has arrived
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    sock.sendall(rest)
    status, body = _read_response(sock)
    assert status == 200
    assert body["model"] == "uci_online_shoppers"
    assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
    text = log.read_text()
    assert "no longer ready" in text
    assert "POST /predict 200" in text


def test_a_request_that_never_completes_is_cut_at_the_grace_period(server) -> None:  # type: ignore[no-untyped-def]
    port, proc, _ = server
    sock, _rest = _half_sent(port)  # the rest never comes
    time.sleep(0.5)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    elapsed = time.monotonic() - started
    sock.close()
    # Three seconds of grace, then the process exits anyway (never before the grace is over).
    assert 2.5 <= elapsed < 20, elapsed
