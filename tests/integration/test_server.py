"""The service as a real uvicorn process on a free loopback port, called over HTTP."""

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

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "uvicorn.log"
    log = log_path.open("w")
    env = {
        **os.environ,
        "PROPENSITY_MODELS_DIR": str(ROOT / "models"),
        "PROPENSITY_DEFAULT_MODEL": "storefront",
        "PROPENSITY_LOG_JSON": "1",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "app.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("uvicorn did not become ready within 60 s")
    yield url
    proc.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal: -15 is a clean exit here.
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    log.close()
    text = log_path.read_text()
    assert "Application shutdown complete" in text
    access = [json.loads(line) for line in text.splitlines() if '"logger":"app.access"' in line]
    mine = [a for a in access if a["request_id"] == "loopback-1"]
    assert mine, text[-2000:]  # the JSON access log carried the caller's id
    assert mine[0]["model"] == "uci_online_shoppers"
    assert mine[0]["status"] == 200


def test_predict_over_http(server: str) -> None:
    row = {
        "PageValues": 12.5,
        "Month": "Nov",
        "Browser": 2,
        "VisitorType": "New_Visitor",
        "Weekend": True,
        "ProductRelated": 30,
        "ExitRates": 0.02,
    }
    response = httpx.post(
        f"{server}/models/uci_online_shoppers/predict",
        json={"rows": [row, {}]},
        headers={"X-Request-ID": "loopback-1"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "loopback-1"
    assert response.headers["x-model-name"] == "uci_online_shoppers"
    first, second = (p["probability"] for p in response.json()["predictions"])
    assert first > second  # a high page value in November beats an empty session


def test_errors_over_http_are_json(server: str) -> None:
    response = httpx.post(
        f"{server}/predict", content=b"{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_recommend_by_user_id_over_http(server: str) -> None:
    response = httpx.post(f"{server}/recommend", json={"user_id": "C00042", "k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "storefront"
    assert body["cold_start"] is False
    assert len(body["items"]) == 3


def test_metrics_over_http(server: str) -> None:
    httpx.post(f"{server}/predict", json={"rows": [{}]})
    text = httpx.get(f"{server}/metrics").text
    assert (
        'propensity_http_requests_total{method="POST",model="storefront",route="/predict",'
        'status="200"}' in text
    )
