"""The service as a real uvicorn process on a free loopback port, called over HTTP."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.live import start_service


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("server") / "uvicorn.log"
    proc, url = start_service(log_path, uvicorn=True, default_model="storefront", log_json="1")
    yield url
    proc.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal: -15 is a clean exit here.
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
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
