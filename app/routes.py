"""HTTP routes: thin handlers that parse, call one scoring function and shape the response.

The scoring routes read the body themselves and parse it straight from bytes with pydantic's
JSON parser (their schemas are added to the OpenAPI document separately). Small requests are
scored on the event loop: for a few rows the work is shorter than parsing the request, and a hop
to a worker thread would cost more than the work itself. Anything larger runs in a worker
thread, so the event loop is never held for long (PROPENSITY_INLINE_ROWS, _ITEMS).
"""

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from app import scoring
from app.bundle import Bundle
from app.card import ModelCard
from app.errors import (
    ModelNotFoundError,
    NotReadyError,
    ServiceError,
    error_response,
    invalid_request,
)
from app.observability import Metrics
from app.registry import Registry
from app.schemas import (
    ErrorResponse,
    ModelSummary,
    PredictResponse,
    RecommendResponse,
    predict_request_model,
    recommend_request_model,
    schema_titles,
)
from app.settings import Settings

JSON = "application/json"
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "malformed JSON",
        404: "no such model",
        409: "the model has no catalogue",
        413: "body too large",
        415: "not application/json",
        422: "invalid fields, each named with its row",
        503: "not ready",
    }.items()
}


class ScoringRoute(Route):
    """A /predict or /recommend route, served without FastAPI's request handler."""


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON)


async def read_json_body(request: Request, limit: int) -> bytes:
    """The body of a JSON request, refusing other content types and bodies over `limit`."""
    ctype = request.headers.get("content-type", "")
    media = ctype.split(";", 1)[0].strip().lower()
    if media != JSON and not media.endswith("+json"):
        raise ServiceError(
            415,
            "unsupported_media_type",
            f"send the body as application/json, not {media or 'no content type'}",
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ServiceError(413, "body_too_large", f"the body exceeds {limit} bytes")
    # Straight from the ASGI messages (Request.stream() is an async generator: measurable on
    # a request that takes tens of microseconds in all).
    chunks, size, more = [], 0, True
    while more:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ServiceError(413, "body_too_large", f"the body exceeds {limit} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if not body:
        raise ServiceError(400, "empty_body", "the request has no body; send a JSON object")
    return body


async def get_registry(request: Request) -> Registry:
    """The loaded models; a dependency so tests can put fakes in its place.

    Async on purpose: FastAPI runs a plain-def dependency in a worker thread.
    """
    registry: Registry = request.app.state.registry
    return registry


RegistryDep = Annotated[Registry, Depends(get_registry)]


async def registry_of(request: Request) -> Registry:
    """get_registry for the scoring routes, without FastAPI's dependency solver (a measurable
    share of a small request), still honouring app.dependency_overrides as tests use it."""
    override = request.app.dependency_overrides.get(get_registry)
    if override is None:
        return await get_registry(request)
    registry: Registry = override()
    return registry


def _state(request: Request, route: str) -> dict[str, Any]:
    """The request's state dict, told the route (for metrics and logs: the scoring routes are
    not FastAPI routes). The dict itself: Request.state wraps it in a new object each time."""
    state: dict[str, Any] = request.scope.setdefault("state", {})
    state["route"] = route
    return state


def _mark(state: dict[str, Any], bundle: Bundle) -> None:
    """Tell the middleware which model answered (for headers, metrics and logs)."""
    state["model"] = bundle.name
    state["version"] = bundle.card.version


def _parse(model: type[BaseModel], body: bytes) -> Any:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_request(exc) from None


def _card_summary(card: ModelCard, default: bool, bundle: Bundle | None) -> dict[str, Any]:
    return ModelSummary(
        name=card.name,
        version=card.version,
        default=default,
        created_at=card.created_at.isoformat(),
        features=len(card.features),
        catalog_items=len(bundle.catalog) if bundle and bundle.catalog is not None else None,
        metrics=card.metrics,
    ).model_dump()


def install_routes(
    router: APIRouter, registry: Registry, settings: Settings, metrics: Metrics
) -> dict[str, type[BaseModel]]:
    """Scoring routes first (the default model's, then each model's), then operations.

    Returns the request models by name, for the OpenAPI document.
    """
    schemas: dict[str, type[BaseModel]] = {}
    titles = schema_titles(list(registry.cards))
    if registry.default is not None:
        default_card = registry.cards[registry.default][1]
        _add_model_routes(
            router,
            "",
            registry.default,
            default_card,
            settings,
            metrics,
            schemas,
            titles[registry.default],
            default=True,
        )
    else:
        # No card to shape a default route from: the service cannot serve and says why.
        @router.post("/predict", include_in_schema=False)
        @router.post("/recommend", include_in_schema=False)
        async def no_default(registry: RegistryDep) -> Response:
            raise NotReadyError(registry.reason())

    for name, (_, card) in registry.cards.items():
        _add_model_routes(
            router, f"/models/{name}", name, card, settings, metrics, schemas, titles[name]
        )

    # Any other /models/NAME/... is a model that is not loaded: say so, and list what is.
    @router.post("/models/{name}/predict", include_in_schema=False)
    @router.post("/models/{name}/recommend", include_in_schema=False)
    async def unknown_model(name: str, registry: RegistryDep) -> Response:
        raise ModelNotFoundError(name, list(registry.cards))

    @router.get("/health/live", tags=["operations"], summary="The process is up")
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @router.get(
        "/health/ready",
        tags=["operations"],
        responses={503: ERRORS[503]},
        summary="Every bundle is loaded and warmed up",
    )
    async def ready(registry: RegistryDep) -> Response:
        if not registry.ready:
            return error_response(NotReadyError(registry.reason()))
        return json_response(
            {
                "status": "ready",
                "default": registry.default,
                "models": {n: b.card.version for n, b in registry.bundles.items()},
            }
        )

    @router.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/models", tags=["models"], response_model=list[ModelSummary])
    async def list_models(registry: RegistryDep) -> Response:
        return json_response(
            [
                _card_summary(card, name == registry.default, registry.bundles.get(name))
                for name, (_, card) in registry.cards.items()
            ]
        )

    @router.get(
        "/models/{name}",
        tags=["models"],
        response_model=ModelCard,
        responses={404: ERRORS[404]},
        summary="The model card: features, metrics, threshold, version",
    )
    async def model_card(name: str, registry: RegistryDep) -> Response:
        if name not in registry.cards:
            raise ModelNotFoundError(name, list(registry.cards))
        return json_response(registry.cards[name][1].model_dump(mode="json"))

    return schemas


class _ThreadWork:
    """One request's work in a worker thread, and a future that resolves when no thread is
    running it any more: when it has run, or when it was given up on before a thread took it
    (the request timed out while waiting for a free thread; it is then never run at all).

    In the usual case the request's own coroutine resolves the future once the result is back;
    only work left running by a request that stopped waiting wakes the event loop from the
    thread (one more self-pipe write per request would be measurable).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], args: Any) -> None:
        self.loop, self.fn, self.args = loop, fn, args
        self.done: asyncio.Future[None] = loop.create_future()
        self.lock = threading.Lock()
        self.started = self.ran = self.abandoned = self.orphaned = False

    def finish(self) -> None:  # on the event loop
        if not self.done.done():
            self.done.set_result(None)

    def __call__(self) -> Any:  # in the worker thread
        with self.lock:
            if self.abandoned:
                return None
            self.started = True
        try:
            return self.fn(*self.args)
        finally:
            with self.lock:
                self.ran = True
                orphaned = self.orphaned
            if orphaned:
                # RuntimeError: the event loop has closed, the process is stopping.
                with contextlib.suppress(RuntimeError):
                    self.loop.call_soon_threadsafe(self.finish)

    def abandon(self) -> None:  # on the event loop, when the request stops waiting
        with self.lock:
            if self.started and not self.ran:
                self.orphaned = True  # the thread resolves the future when it ends
                return
            self.abandoned = True
        self.finish()


async def _run(state: dict[str, Any], inline: bool, fn: Callable[..., Any], *args: Any) -> Any:
    """Small work on the event loop, the rest in a worker thread.

    A thread's work is recorded in the request's state (a future that resolves when no thread
    runs it), so that the concurrency cap keeps counting work a timed-out request left running.
    """
    if inline:
        return fn(*args)
    work = _ThreadWork(asyncio.get_running_loop(), fn, args)
    state["work"] = work.done
    try:
        result = await run_in_threadpool(work)
    except BaseException:
        work.abandon()
        raise
    work.finish()
    return result


def _add_model_routes(
    router: APIRouter,
    prefix: str,
    name: str,
    card: ModelCard,
    settings: Settings,
    metrics: Metrics,
    schemas: dict[str, type[BaseModel]],
    title: str,
    default: bool = False,
) -> None:
    predict_model = predict_request_model(card, settings, title)
    recommend_model = recommend_request_model(card, settings, title)
    schemas[predict_model.__name__] = predict_model
    schemas[recommend_model.__name__] = recommend_model
    tag = "default model" if default else f"model {name}"
    which = f"the default model ({name})" if default else name
    limit = settings.max_body_bytes
    # A row of raw features is a few hundred bytes of JSON: the body's size tells, before
    # parsing it, whether the request is small enough to handle on the event loop.
    inline_bytes = settings.inline_rows * 512
    predict_seconds = metrics.inference.labels(name, "predict")
    recommend_seconds = metrics.inference.labels(name, "recommend")
    predict_rows = metrics.rows.labels(name, "predict")
    recommend_rows = metrics.rows.labels(name, "recommend")

    predict_route, recommend_route = prefix + "/predict", prefix + "/recommend"

    def score(bundle: Bundle, raw: bytes) -> bytes:
        payload = _parse(predict_model, raw)
        started = time.perf_counter()
        probabilities = scoring.predict(bundle, payload.rows)
        predict_seconds.observe(time.perf_counter() - started)
        predict_rows.inc(len(probabilities))
        threshold = bundle.card.threshold
        return orjson.dumps(
            {
                "model": name,
                "version": bundle.card.version,
                "threshold": threshold,
                "predictions": [
                    {"probability": p, "label": p >= threshold} for p in probabilities.tolist()
                ],
            }
        )

    async def predict(request: Request) -> Response:
        state = _state(request, predict_route)
        bundle = (await registry_of(request)).get(name)
        _mark(state, bundle)
        raw = await read_json_body(request, limit)
        answer = await _run(state, len(raw) <= inline_bytes, score, bundle, raw)
        return Response(answer, media_type=JSON)

    def rank(bundle: Bundle, payload: Any) -> bytes:
        started = time.perf_counter()
        ranking = scoring.recommend(
            bundle,
            user_id=payload.user_id,
            features=payload.features,
            candidates=payload.candidates,
            exclude=payload.exclude,
            k=payload.k,
        )
        recommend_seconds.observe(time.perf_counter() - started)
        recommend_rows.inc(ranking.scored)
        return orjson.dumps(
            {
                "model": name,
                "version": bundle.card.version,
                "user_id": payload.user_id,
                "cold_start": ranking.cold_start,
                "items": [
                    {"item_id": i, "score": s}
                    for i, s in zip(ranking.item_ids, ranking.scores, strict=True)
                ],
                "unknown_candidates": ranking.unknown_candidates,
            }
        )

    async def recommend(request: Request) -> Response:
        state = _state(request, recommend_route)
        bundle = (await registry_of(request)).get(name)
        _mark(state, bundle)
        payload = _parse(recommend_model, await read_json_body(request, limit))
        catalogue = len(bundle.catalog) if bundle.catalog is not None else 0
        work = len(payload.candidates) if payload.candidates is not None else catalogue
        answer = await _run(state, work <= settings.inline_items, rank, bundle, payload)
        return Response(answer, media_type=JSON)

    # Served by plain Starlette routes at the head of the table, the default model's first:
    # FastAPI's request handler (dependency solving, response models) costs more than scoring a
    # small request. The FastAPI routes added below are what /docs and /openapi.json describe.
    head = sum(isinstance(r, ScoringRoute) for r in router.routes)
    router.routes[head:head] = [
        ScoringRoute(prefix + "/predict", predict, methods=["POST"]),
        ScoringRoute(prefix + "/recommend", recommend, methods=["POST"]),
    ]
    for path, endpoint, request_model, response_model, summary in (
        (
            "/predict",
            predict,
            predict_model,
            PredictResponse,
            f"Purchase probability per row, from {which}",
        ),
        (
            "/recommend",
            recommend,
            recommend_model,
            RecommendResponse,
            f"Top-k catalogue items for a user, ranked by {which}",
        ),
    ):
        router.add_api_route(
            prefix + path,
            endpoint,
            methods=["POST"],
            tags=[tag],
            summary=summary,
            response_model=response_model,
            responses=ERRORS,
            operation_id=f"{path.strip('/')}_{'default' if default else name}",
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {
                        JSON: {"schema": {"$ref": f"#/components/schemas/{request_model.__name__}"}}
                    },
                },
            },
        )
