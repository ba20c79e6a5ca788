"""SIGTERM against a real server (`python -m app`): requests in flight finish, then it exits."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.live import free_port, start_service

ROW = {"PageValues": 12.5, "Month": "Nov", "Browser": 2}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes], Path]]:
    port, log = free_port(), tmp_path / "server.log"
    proc, _ = start_service(
        log, port, default_model="uci_online_shoppers", shutdown_grace_seconds="3"
    )
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
