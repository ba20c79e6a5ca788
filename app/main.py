"""The service: `create_app` builds the FastAPI application from the bundles on disk."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.errors import install_error_handlers
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


def create_app(settings: Settings | None = None) -> FastAPI:
    """Read the bundles' cards, build typed routes from them; sessions load in the lifespan."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    registry = Registry(settings)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(registry.load)
        yield
        registry.stopping = True

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
    request_schemas = install_routes(app.router, registry, settings, metrics)
    install_error_handlers(app)
    app.add_middleware(
        ObservabilityMiddleware, metrics=metrics, access_log=AccessLog(settings.log_json)
    )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, model in request_schemas.items():
                body = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(body.pop("$defs", {}))
                components[name] = body
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
