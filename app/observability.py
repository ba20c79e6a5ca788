"""Logs, request ids and Prometheus metrics: one ASGI middleware and one metrics registry."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import secrets
import sys
import time
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import loggable

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
_LABELS = ("route", "method", "status", "model")
# A caller's request id is kept if it is 1 to 128 printable ASCII characters without spaces
# (UUIDs, hex, base64, W3C trace ids...): safe in a header and on a log line.
_REQUEST_ID = re.compile(r"^[!-~]{1,128}$")


class Metrics:
    """The service's Prometheus collectors, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "propensity_http_request_duration_seconds",
            "Time from request to response, in the server",
            _LABELS,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_RequestCounts(self.latency))
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


class _RequestCounts(Collector):
    """propensity_http_requests_total, read from the latency histogram's counts when scraped:
    a counter of its own would be one more locked increment on every request, for the same
    number."""

    NAME = "propensity_http_requests"

    def __init__(self, latency: Histogram) -> None:
        self.latency = latency

    def describe(self) -> list[CounterMetricFamily]:
        return [CounterMetricFamily(self.NAME, "HTTP requests served", labels=_LABELS)]

    def collect(self) -> list[CounterMetricFamily]:
        family = CounterMetricFamily(self.NAME, "HTTP requests served", labels=_LABELS)
        for metric in self.latency.collect():
            for sample in metric.samples:
                if sample.name.endswith("_count"):
                    labels = [sample.labels[k] for k in _LABELS]
                    family.add_metric(labels, sample.value)
        return [family]


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


class AccessLog:
    """One line per request, in the same format as the other log lines, written straight to
    the log stream: through the logging module a line costs about as much as a small request.
    Lines finished in one turn of the event loop go out in one write at the end of the turn."""

    def __init__(self, as_json: bool, stream: Any = None) -> None:
        self.as_json = as_json
        self.stream = stream if stream is not None else sys.stderr
        self.pending: list[str] = []
        self._second = -1
        self._stamp = ""

    def enabled(self) -> bool:
        return log.isEnabledFor(logging.INFO)

    def _time(self) -> str:
        now = time.time()
        if int(now) != self._second:
            self._second = int(now)
            fmt = "%Y-%m-%dT%H:%M:%S" if self.as_json else "%H:%M:%S"
            self._stamp = time.strftime(fmt, time.localtime(now))
        return self._stamp

    def write(
        self,
        method: str,
        path: str,
        status: int,
        seconds: float,
        request_id: str,
        model: str | None,
        version: str | None,
    ) -> None:
        ms = seconds * 1000
        message = f"{method} {path} {status} {ms:.2f}ms"
        if self.as_json:
            line = orjson.dumps(
                {
                    "time": self._time(),
                    "level": "info",
                    "logger": log.name,
                    "message": message,
                    "request_id": request_id,
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round(ms, 3),
                    "model": model,
                    "version": version,
                }
            ).decode()
        else:
            served = f" model={model}/{version}" if model else ""
            line = f"{self._time()} INFO {log.name}: {message} id={request_id}{served}"
        if not self.pending:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no event loop: write now
                self.pending.append(line)
                self.flush()
                return
        self.pending.append(line)

    def flush(self) -> None:
        if self.pending:
            data = "\n".join(self.pending) + "\n"
            self.pending.clear()
            self.stream.write(data)
            self.stream.flush()


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
    """Request id in and out, model headers, metrics and one access-log line per request.

    The status of the answer is kept in the request's state (`state["status"]`) as soon as the
    answer starts: the guards inside read it to know whether an answer has begun.

    It runs on every request, so it appends raw headers and keeps the labelled metric children
    it has used (route, method, status and model are few) instead of looking them up each time.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: AccessLog) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self._children: dict[tuple[str, str, str, str], Any] = {}
        self._model_headers: dict[tuple[str, str], list[tuple[bytes, bytes]]] = {}
        # A request id needs to be unique, not secret: a random prefix per process and a
        # counter (a fresh token_hex per request is a measurable share of a small request).
        self._id_prefix = secrets.token_hex(8)
        self._id_count = itertools.count()

    def _new_request_id(self) -> str:
        return f"{self._id_prefix}{next(self._id_count):016x}"

    def _headers_of(self, model: str, version: str) -> list[tuple[bytes, bytes]]:
        key = (model, version)
        headers = self._model_headers.get(key)
        if headers is None:
            headers = [(b"x-model-name", model.encode()), (b"x-model-version", version.encode())]
            self._model_headers[key] = headers
        return headers

    def _observe(self, labels: tuple[str, str, str, str], seconds: float) -> None:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self.metrics.latency.labels(*labels)
        child.observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = ""
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                given = value.decode("latin-1")
                break
        request_id = given if given and _REQUEST_ID.match(given) else self._new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                if "model" in state:
                    headers += self._headers_of(state["model"], state["version"])
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:
            # The caller went away before sending its whole request: nobody to answer, and not
            # a server error (nginx's 499 in the log and metrics).
            state.setdefault("status", 499)
        finally:
            elapsed = time.perf_counter() - started
            status = state.get("status", 500)
            route = scope.get("route")
            path = getattr(route, "path", None) or state.get("route") or "unmatched"
            model = state.get("model", "")
            self._observe((path, scope["method"], str(status), model), elapsed)
            if self.access_log.enabled():
                self.access_log.write(
                    scope["method"],
                    loggable(scope["path"]),
                    status,
                    elapsed,
                    request_id,
                    model or None,
                    state.get("version"),
                )
