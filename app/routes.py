"""HTTP routes: thin handlers that parse, call one scoring function and shape the response.

The scoring routes (/predict, /recommend, and each model's) are ASGI handlers served by
`app.dispatch.ScoringDispatch`; they parse the body straight from bytes with pydantic's JSON
parser. FastAPI routes describe them in the OpenAPI document without being routed. The others
(health, metrics, model cards) are ordinary FastAPI routes.
"""

import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope

from app import scoring
from app.bundle import Bundle
from app.card import ModelCard
from app.dispatch import JSON, Handler, read_json_body, run_work
from app.errors import (
    ModelNotFoundError,
    NotReadyError,
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


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON)


async def get_registry(request: Request) -> Registry:
    """The loaded models; a dependency so tests can put fakes in its place.

    Async on purpose: FastAPI runs a plain-def dependency in a worker thread.
    """
    registry: Registry = request.app.state.registry
    return registry


RegistryDep = Annotated[Registry, Depends(get_registry)]


def _registry_of(scope: Scope, registry: Registry) -> Registry:
    """The loaded models for a scoring handler (which FastAPI's dependency solver does not
    reach), still honouring app.dependency_overrides as tests use it."""
    override = scope["app"].dependency_overrides.get(get_registry)
    return registry if override is None else override()


def _state(scope: Scope, route: str) -> dict[str, Any]:
    """The request's state dict, told the route (for metrics and logs: the scoring routes are
    not routed by the framework)."""
    state: dict[str, Any] = scope.setdefault("state", {})
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


@dataclass
class ScoringRoutes:
    """What install_routes makes for the scoring paths: their handlers by path (for
    ScoringDispatch), the FastAPI routes that document them, and their request models by
    schema name (for the OpenAPI document)."""

    handlers: dict[str, Handler] = field(default_factory=dict)
    documented: list[BaseRoute] = field(default_factory=list)
    schemas: dict[str, type[BaseModel]] = field(default_factory=dict)


def install_routes(
    router: APIRouter, registry: Registry, settings: Settings, metrics: Metrics
) -> ScoringRoutes:
    """The scoring handlers (the default model's, then each model's) and the operations."""
    scoring_routes = ScoringRoutes()
    titles = schema_titles(list(registry.cards))
    if registry.default is not None:
        default_card = registry.cards[registry.default][1]
        _add_model_routes(
            scoring_routes,
            "",
            registry,
            registry.default,
            default_card,
            settings,
            metrics,
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
            scoring_routes,
            f"/models/{name}",
            registry,
            name,
            card,
            settings,
            metrics,
            titles[name],
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

    return scoring_routes


def _add_model_routes(
    routes: ScoringRoutes,
    prefix: str,
    registry: Registry,
    name: str,
    card: ModelCard,
    settings: Settings,
    metrics: Metrics,
    title: str,
    default: bool = False,
) -> None:
    predict_model = predict_request_model(card, settings, title)
    recommend_model = recommend_request_model(card, settings, title)
    limit = settings.max_body_bytes
    # A row of raw features is a few hundred bytes of JSON as an object, a hundred or so as
    # columns: the body's size tells, before parsing it, whether the request is small enough to
    # handle on the event loop. Measured at 64 connections, 50 rows as columns (5 KB) scored on
    # the loop had a p99 of 75 ms, against 21 ms in a worker thread.
    row_bytes, column_bytes = settings.inline_rows * 512, settings.inline_rows * 128
    predict_seconds = metrics.inference.labels(name, "predict")
    recommend_seconds = metrics.inference.labels(name, "recommend")
    predict_rows = metrics.rows.labels(name, "predict")
    recommend_rows = metrics.rows.labels(name, "recommend")
    predict_route, recommend_route = prefix + "/predict", prefix + "/recommend"

    def score(bundle: Bundle, raw: bytes) -> bytes:
        payload = _parse(predict_model, raw)
        started = time.perf_counter()
        probabilities = scoring.predict(bundle, payload.rows, payload.columns)
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

    async def predict(scope: Scope, receive: Receive) -> bytes:
        state = _state(scope, predict_route)
        bundle = _registry_of(scope, registry).get(name)
        _mark(state, bundle)
        raw = await read_json_body(scope, receive, limit)
        size = len(raw)
        # Columns are the body's one key, so they are named in its first bytes; a false match
        # only sends a small body to a worker thread.
        inline = size <= row_bytes and (size <= column_bytes or raw.find(b'"columns"', 0, 64) == -1)
        answer: bytes = await run_work(state, inline, score, bundle, raw)
        return answer

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

    async def recommend(scope: Scope, receive: Receive) -> bytes:
        state = _state(scope, recommend_route)
        bundle = _registry_of(scope, registry).get(name)
        _mark(state, bundle)
        payload = _parse(recommend_model, await read_json_body(scope, receive, limit))
        catalogue = len(bundle.catalog) if bundle.catalog is not None else 0
        work = len(payload.candidates) if payload.candidates is not None else catalogue
        answer: bytes = await run_work(state, work <= settings.inline_items, rank, bundle, payload)
        return answer

    routes.handlers[predict_route] = predict
    routes.handlers[recommend_route] = recommend
    routes.schemas[predict_model.__name__] = predict_model
    routes.schemas[recommend_model.__name__] = recommend_model
    _document(routes, prefix, name, predict_model, recommend_model, default)


def _document(
    routes: ScoringRoutes,
    prefix: str,
    name: str,
    predict_model: type[BaseModel],
    recommend_model: type[BaseModel],
    default: bool,
) -> None:
    """FastAPI routes that describe a model's scoring paths in /docs; never routed."""

    async def served_by_scoring_dispatch() -> None:
        raise AssertionError("the scoring paths are answered by app.dispatch.ScoringDispatch")

    docs = APIRouter()
    tag = "default model" if default else f"model {name}"
    which = f"the default model ({name})" if default else name
    for path, request_model, response_model, summary in (
        ("/predict", predict_model, PredictResponse, f"Purchase probability per row, from {which}"),
        (
            "/recommend",
            recommend_model,
            RecommendResponse,
            f"Top-k catalogue items for a user, ranked by {which}",
        ),
    ):
        docs.add_api_route(
            prefix + path,
            served_by_scoring_dispatch,
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
    routes.documented.extend(docs.routes)
