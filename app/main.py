"""The service: `create_app` builds the FastAPI application from the bundles on disk."""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.dispatch import ScoringDispatch
from app.errors import InternalErrorMiddleware, install_error_handlers
from app.guards import ApiKeyMiddleware, JsonCORSMiddleware, LimitsMiddleware
from app.observability import AccessLog, Metrics, ObservabilityMiddleware, configure_logging
from app.registry import Registry
from app.routes import install_routes
from app.settings import Settings, get_settings

log = logging.getLogger(__name__)

DESCRIPTION = """
Purchase-propensity scores and product recommendations from ONNX model bundles.

* `POST /predict`: purchase probability for one or many rows of raw session features.
* `POST /recommend`: a user's top-k catalogue items by predicted purchase probability.
* `/models/{name}/...`: the same for any loaded model; `GET /models/{name}` shows its card.

Every error is JSON: `{"error": {"code", "message", "details": [{"field", "problem", "row"}]}}`.
"""


def _unready_on_signal(registry: Registry) -> Callable[[], None]:
    """On SIGTERM or SIGINT, turn readiness off at once, then let the server's own handler
    begin its graceful shutdown (requests in flight finish; no new ones are taken).

    Returns a function that puts the previous handlers back. Signals can only be handled in
    the main thread; elsewhere (a test client) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handle(signum: int, frame: FrameType | None) -> None:
        if not registry.stopping:
            log.info("signal %d: no longer ready; finishing the requests in flight", signum)
        registry.stopping = True
        chained = previous[signal.Signals(signum)]
        if callable(chained):
            chained(signum, frame)
        elif chained == signal.SIG_DFL:
            signal.default_int_handler(signum, frame) if signum == signal.SIGINT else sys.exit(0)

    for sig in previous:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is handle:
                signal.signal(sig, handler)

    return restore


def create_app(settings: Settings | None = None) -> FastAPI:
    """Read the bundles' cards, build typed routes from them; sessions load in the lifespan."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    registry = Registry(settings)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(registry.load)
        # Everything loaded so far lives as long as the process: keep the garbage collector's
        # full collections from walking it again and again under load (p99 latency).
        gc.collect()
        gc.freeze()
        restore = _unready_on_signal(registry)
        yield
        registry.stopping = True
        restore()

    app = FastAPI(
        # FastAPI's OpenTelemetry layer looks the providers up in the environment on every
        # request (a quarter of the event loop's time under load); metrics are Prometheus here.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        title="Purchase propensity service",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.registry = registry
    app.state.settings = settings
    app.state.metrics = metrics
    scoring = install_routes(app.router, registry, settings, metrics)
    install_error_handlers(app)
    # Added innermost first: requests meet the access log and metrics, then CORS, then the API
    # key check, then the limits, then the scoring handlers; anything else goes on through the
    # handler that turns a bug into a JSON 500 to the router.
    app.add_middleware(InternalErrorMiddleware)
    app.add_middleware(ScoringDispatch, routes=scoring.handlers)
    app.add_middleware(
        LimitsMiddleware,
        max_concurrency=settings.max_concurrency,
        timeout=settings.request_timeout_seconds,
    )
    keys = settings.keys()
    if keys:
        app.add_middleware(ApiKeyMiddleware, keys=keys)
    if settings.cors_origins:
        app.add_middleware(
            JsonCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "X-Model-Name", "X-Model-Version"],
        )
    app.add_middleware(
        ObservabilityMiddleware, metrics=metrics, access_log=AccessLog(settings.log_json)
    )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=[*scoring.documented, *app.routes],
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, model in scoring.schemas.items():
                body = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(body.pop("$defs", {}))
                components[name] = body
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
