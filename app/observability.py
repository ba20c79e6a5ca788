"""Logs, request ids and Prometheus metrics: one ASGI middleware and one metrics registry."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("app.access")

# Sub-millisecond buckets: a small model answers in well under a millisecond in-process.
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class Metrics:
    """The service's Prometheus collectors, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("route", "method", "status", "model")
        self.requests = Counter(
            "propensity_http_requests", "HTTP requests served", labels, registry=self.registry
        )
        self.latency = Histogram(
            "propensity_http_request_duration_seconds",
            "Time from request to response, in the server",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inference = Histogram(
            "propensity_inference_duration_seconds",
            "Time in onnxruntime per call",
            ("model", "endpoint"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter(
            "propensity_rows_scored",
            "Rows (or catalogue items) scored",
            ("model", "endpoint"),
            registry=self.registry,
        )


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with whatever structured fields the record carries."""

    FIELDS = ("request_id", "method", "path", "status", "duration_ms", "model", "version")

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: str, as_json: bool) -> None:
    """Configure the root logger once, at the entrypoint."""
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Our access log replaces uvicorn's, which lacks the request id, the model and the timing.
    logging.getLogger("uvicorn.access").disabled = True


class ObservabilityMiddleware:
    """Request id in and out, model headers, metrics and one access-log line per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode(
            "latin-1"
        )
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                if "model" in state:
                    headers["X-Model-Name"] = state["model"]
                    headers["X-Model-Version"] = state["version"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            model = state.get("model", "")
            labels = (path, scope["method"], str(status), model)
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(elapsed)
            log.info(
                "%s %s %d %.2fms",
                scope["method"],
                scope["path"],
                status,
                elapsed * 1000,
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "model": model or None,
                    "version": state.get("version"),
                },
            )
