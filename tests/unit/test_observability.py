"""The observability middleware on its own: request ids, access lines, metrics, and what it
records (with the error middleware under it) when the app fails or the caller goes away."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from starlette.requests import ClientDisconnect

from app.errors import InternalErrorMiddleware
from app.observability import AccessLog, Metrics, ObservabilityMiddleware

Inner = Callable[[Any, Any, Any], Awaitable[None]]


async def answer_ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def call(
    inner: Inner, path: str = "/predict", headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[list[dict[str, Any]], Metrics, str]:
    """One request through the middleware: the messages sent, the metrics and the access log."""
    metrics, stream = Metrics(), io.StringIO()
    access = AccessLog(as_json=False, stream=stream)
    middleware = ObservabilityMiddleware(inner, metrics, access)
    sent: list[dict[str, Any]] = []
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers or []}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    access.flush()
    return sent, metrics, stream.getvalue()


def served(metrics: Metrics, status: str) -> float:
    value = metrics.registry.get_sample_value(
        "propensity_http_requests_total",
        {"route": "unmatched", "method": "POST", "status": status, "model": ""},
    )
    return value or 0.0


@pytest.fixture(autouse=True)
def access_lines_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="app.access")


def test_a_path_cannot_forge_access_log_lines() -> None:
    # "/x%0A01:02:03 INFO app.access: GET /admin 200" arrives decoded in scope["path"].
    _, _, log = call(answer_ok, path="/x\n01:02:03 INFO app.access: GET /admin 200")
    assert log.count("\n") == 1, log  # one request, one line
    assert "/x\\n01:02:03" in log


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("abc-123", True),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", True),  # W3C traceparent
        ("dGVzdA+/=", True),  # base64
        ("a b", False),
        ("a\tb", False),
        ("x" * 129, False),
    ],
)
def test_a_callers_request_id_is_kept_if_it_is_safe(given: str, kept: bool) -> None:
    sent, _, log = call(answer_ok, headers=[(b"x-request-id", given.encode())])
    headers = dict(sent[0]["headers"])
    assert (headers[b"x-request-id"].decode() == given) is kept
    assert f"id={headers[b'x-request-id'].decode()}" in log


def test_an_unexpected_error_is_a_json_500_with_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("a bug")

    sent, metrics, log = call(
        InternalErrorMiddleware(broken), headers=[(b"x-request-id", b"trace-123")]
    )
    start, body = sent
    assert start["status"] == 500
    assert (b"x-request-id", b"trace-123") in start["headers"]
    assert json.loads(body["body"])["error"]["code"] == "internal_error"
    assert served(metrics, "500") == 1
    assert "POST /predict 500" in log and "id=trace-123" in log
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)


def test_an_error_after_the_answer_started_is_not_answered_twice() -> None:
    async def half(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("a bug mid-answer")

    with pytest.raises(RuntimeError):
        call(InternalErrorMiddleware(half))


def test_a_caller_that_goes_away_mid_request_is_not_a_server_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def reading(scope: Any, receive: Any, send: Any) -> None:
        raise ClientDisconnect()

    sent, metrics, log = call(InternalErrorMiddleware(reading))
    assert sent == []  # nobody to answer
    assert served(metrics, "499") == 1 and served(metrics, "500") == 0
    assert "POST /predict 499" in log
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
