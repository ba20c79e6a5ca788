"""API keys, CORS, the concurrency cap, the request timeout and readiness on SIGTERM."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.guards import LimitsMiddleware
from app.main import _unready_on_signal, create_app
from app.observability import AccessLog, Metrics, ObservabilityMiddleware
from app.routes import get_registry
from app.settings import Settings
from tests.fakes import FakeBundle, FakeRegistry, break_scoring, make_card, write_card

ROW = {"device": "mobile"}
KEY = "s3cret-key"


def _app(tmp_path: Path, **settings: Any) -> tuple[Any, FakeRegistry]:
    write_card(tmp_path, make_card("fake"))
    config = Settings(models_dir=tmp_path, **settings)
    registry = FakeRegistry(config)
    registry.load()
    app = create_app(config)
    app.dependency_overrides[get_registry] = lambda: registry
    return app, registry


# --- API keys --------------------------------------------------------------------------------


def test_without_keys_everything_is_open(tmp_path: Path) -> None:
    client = TestClient(_app(tmp_path)[0])
    assert client.post("/predict", json={"rows": [ROW]}).status_code == 200
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "wrong"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": KEY},
        {"Authorization": "Basic " + KEY},
        {"X-API-Key": ""},
    ],
)
def test_with_keys_a_missing_or_wrong_key_gets_the_same_401(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    client = TestClient(_app(tmp_path, api_keys=[KEY, "other"])[0])
    for method, path in (
        ("POST", "/predict"),
        ("GET", "/metrics"),
        ("GET", "/models"),
        ("GET", "/openapi.json"),
        ("POST", "/models/nope/predict"),
    ):
        response = client.request(method, path, json={"rows": [ROW]}, headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.json() == {
            "error": {"code": "unauthorized", "message": "missing or invalid API key"}
        }
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}, {"authorization": f"bearer  {KEY} "}],
)
def test_a_valid_key_in_either_header_is_let_in(tmp_path: Path, headers: dict[str, str]) -> None:
    client = TestClient(_app(tmp_path, api_keys=["other", KEY])[0])
    assert client.post("/predict", json={"rows": [ROW]}, headers=headers).status_code == 200


def test_health_checks_stay_open_with_keys(tmp_path: Path) -> None:
    client = TestClient(_app(tmp_path, api_keys=[KEY])[0])
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 200


def test_keys_come_from_a_file_too(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# one key per line\nfrom-file\n\n")
    client = TestClient(_app(tmp_path / "m", api_keys=[KEY], api_keys_file=keys)[0])
    for key in (KEY, "from-file"):
        assert client.get("/models", headers={"X-API-Key": key}).status_code == 200
    assert client.get("/models", headers={"X-API-Key": "# one key per line"}).status_code == 401


def test_env_keys_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROPENSITY_API_KEYS", " a1, b2 ,")
    monkeypatch.setenv("PROPENSITY_CORS_ORIGINS", "https://shop.example")
    settings = Settings()
    assert settings.keys() == ["a1", "b2"]
    assert settings.cors_origins == ["https://shop.example"]


# --- CORS ------------------------------------------------------------------------------------

PREFLIGHT = {
    "Origin": "https://shop.example",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type",
}


def test_cors_is_off_by_default(tmp_path: Path) -> None:
    client = TestClient(_app(tmp_path)[0])
    response = client.options("/predict", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in response.headers
    answer = client.post("/predict", json={"rows": [ROW]}, headers={"Origin": PREFLIGHT["Origin"]})
    assert "access-control-allow-origin" not in answer.headers


def test_cors_allows_the_configured_origins_only(tmp_path: Path) -> None:
    client = TestClient(_app(tmp_path, cors_origins=["https://shop.example"])[0])
    ok = client.options("/predict", headers=PREFLIGHT)
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://shop.example"
    other = client.options("/predict", headers=PREFLIGHT | {"Origin": "https://evil.example"})
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    assert other.headers["content-type"] == "application/json"
    assert other.json()["error"] == {"code": "cors_refused", "message": "Disallowed CORS origin"}


def test_a_500_carries_the_cors_headers_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A browser can read the error (and its request id) only if the 500 passes through CORS."""

    break_scoring(monkeypatch)
    client = TestClient(_app(tmp_path, cors_origins=["https://shop.example"])[0])
    response = client.post(
        "/predict", json={"rows": [ROW]}, headers={"Origin": "https://shop.example"}
    )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.headers["access-control-allow-origin"] == "https://shop.example"
    assert "x-request-id" in response.headers


# --- the concurrency cap and the timeout -------------------------------------------------------


class Gate:
    """Holds a fake model's call until released, so a request stays in flight."""

    def __init__(self, bundle: FakeBundle) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        original = bundle.run

        def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
            self.entered.set()
            self.release.wait(10)
            return original(feeds)

        object.__setattr__(bundle, "run", run)


@pytest.mark.anyio
async def test_one_request_over_the_cap_gets_503_with_retry_after(tmp_path: Path) -> None:
    # inline_rows=0: scoring runs in a worker thread, where the gate can hold it.
    app, registry = _app(tmp_path, max_concurrency=1, inline_rows=0)
    gate = Gate(registry.bundles["fake"])  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first = asyncio.create_task(client.post("/predict", json={"rows": [ROW]}))
        while not gate.entered.is_set():
            await asyncio.sleep(0.01)
        busy = await client.post("/predict", json={"rows": [ROW]})
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "1"
        assert busy.json()["error"]["code"] == "overloaded"
        # Health checks are not counted and not refused.
        assert (await client.get("/health/live")).status_code == 200
        gate.release.set()
        assert (await first).status_code == 200
        assert (await client.post("/predict", json={"rows": [ROW]})).status_code == 200


@pytest.mark.anyio
async def test_a_request_over_the_timeout_gets_504(tmp_path: Path) -> None:
    app, registry = _app(tmp_path, request_timeout_seconds=0.2, inline_rows=0)
    gate = Gate(registry.bundles["fake"])  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        started = time.monotonic()
        response = await client.post("/predict", json={"rows": [ROW]})
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "timeout"
        assert time.monotonic() - started < 5
        gate.release.set()


@pytest.mark.anyio
async def test_a_timeout_after_the_answer_started_sends_nothing_more() -> None:
    """The cap and the timeout, behind the observability middleware as in the service: an
    answer that has begun cannot be replaced by a 504; the request is cut and logged."""

    async def slow_body(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(5)

    limits = LimitsMiddleware(slow_body, max_concurrency=4, timeout=0.05)
    metrics = Metrics()
    app = ObservabilityMiddleware(limits, metrics, AccessLog(as_json=False, stream=io.StringIO()))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/slow", "headers": []}
    started = time.monotonic()
    await app(scope, receive, send)
    assert time.monotonic() - started < 2
    assert [m["type"] for m in sent] == ["http.response.start"]
    assert sent[0]["status"] == 200
    assert limits.in_flight == 0


@pytest.mark.anyio
async def test_work_that_timed_out_keeps_its_slot_until_its_thread_ends(tmp_path: Path) -> None:
    """A timeout answers the caller, but a worker thread cannot be stopped: the cap counts its
    work until it is done, or timed-out requests could pile up work without bound."""
    app, registry = _app(tmp_path, max_concurrency=1, request_timeout_seconds=0.2, inline_rows=0)
    gate = Gate(registry.bundles["fake"])  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.post("/predict", json={"rows": [ROW]})).status_code == 504
        busy = await client.post("/predict", json={"rows": [ROW]})
        assert busy.status_code == 503, busy.text  # the first one's thread still runs
        gate.release.set()
        for _ in range(500):  # the slot comes back once the thread has finished
            answer = await client.post("/predict", json={"rows": [ROW]})
            if answer.status_code != 503:
                break
            await asyncio.sleep(0.01)
        assert answer.status_code == 200, answer.text


@pytest.mark.anyio
async def test_work_still_waiting_for_a_thread_at_its_timeout_never_runs(tmp_path: Path) -> None:
    """With every worker thread busy, a request that times out while waiting for one frees its
    slot at once, and its work is dropped rather than run later for nobody."""
    app, registry = _app(tmp_path, max_concurrency=1, request_timeout_seconds=0.2, inline_rows=0)
    bundle = registry.bundles["fake"]
    assert isinstance(bundle, FakeBundle)
    limiter = anyio.to_thread.current_default_thread_limiter()
    tokens, limiter.total_tokens = limiter.total_tokens, 1  # one worker thread in all...
    busy = threading.Event()
    blocker = asyncio.create_task(anyio.to_thread.run_sync(busy.wait, 10))  # ...and it is taken
    while limiter.borrowed_tokens < 1:
        await asyncio.sleep(0.01)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for attempt in range(3):  # with the cap at 1, a slot kept by the last would 503
                waited = await client.post("/predict", json={"rows": [ROW]})
                assert waited.status_code == 504, (attempt, waited.text)
            busy.set()
            await blocker
            answer = await client.post("/predict", json={"rows": [ROW]})
            assert answer.status_code == 200, answer.text
        await asyncio.sleep(0.1)
        assert len(bundle.calls) == 1  # only the last: the three abandoned never ran
    finally:
        busy.set()
        limiter.total_tokens = tokens


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- SIGTERM turns readiness off -----------------------------------------------------------------


def test_sigterm_turns_readiness_off_then_hands_over(tmp_path: Path) -> None:
    _, registry = _app(tmp_path)
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        restore = _unready_on_signal(registry)
        assert registry.ready
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert not registry.ready
        assert registry.reason() == "shutting down"
        # Requests that still arrive (accepted before the signal) are answered, not refused.
        assert registry.get("fake").name == "fake"
        assert seen == [signal.SIGTERM]  # uvicorn's own handler still runs
        restore()
    finally:
        signal.signal(signal.SIGTERM, previous)
