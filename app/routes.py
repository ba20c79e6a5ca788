"""HTTP routes: thin handlers that parse, call one scoring function and shape the response."""

import time
from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError

from app import scoring
from app.bundle import Bundle
from app.card import ModelCard
from app.errors import ModelNotFoundError, NotReadyError, ServiceError, invalid_request
from app.observability import Metrics
from app.registry import Registry
from app.schemas import (
    ErrorResponse,
    ModelSummary,
    PredictResponse,
    RecommendResponse,
    predict_request_model,
    recommend_request_model,
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


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON)


def body_reader(limit: int) -> Callable[[Request], Any]:
    """A dependency that reads a JSON body, refusing other content types and oversize bodies."""

    async def read_json_body(request: Request) -> bytes:
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
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ServiceError(413, "body_too_large", f"the body exceeds {limit} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        if not body:
            raise ServiceError(400, "empty_body", "the request has no body; send a JSON object")
        return body

    return read_json_body


def get_registry(request: Request) -> Registry:
    """The loaded models; a dependency so tests can put fakes in its place."""
    registry: Registry = request.app.state.registry
    return registry


RegistryDep = Annotated[Registry, Depends(get_registry)]


def _mark(request: Request, bundle: Bundle) -> None:
    """Tell the middleware which model answered (for headers, metrics and logs)."""
    request.state.model = bundle.name
    request.state.version = bundle.card.version


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


def build_router(
    registry: Registry, settings: Settings, metrics: Metrics
) -> tuple[APIRouter, dict[str, type[BaseModel]]]:
    """Operations routes, then /models/NAME/{predict,recommend} per bundle and the defaults.

    Also returns the request models by name: the bodies are parsed by hand (straight from bytes,
    with pydantic's JSON parser), so their schemas are added to the OpenAPI document separately.
    """
    router = APIRouter()
    schemas: dict[str, type[BaseModel]] = {}
    body = Annotated[bytes, Depends(body_reader(settings.max_body_bytes))]

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
            return json_response(
                {"error": {"code": "not_ready", "message": registry.reason()}}, status=503
            )
        return json_response(
            {
                "status": "ready",
                "default": registry.default,
                "models": {n: b.card.version for n, b in registry.bundles.items()},
            }
        )

    @router.get("/metrics", tags=["operations"], summary="Prometheus metrics")
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

    for name, (_, card) in registry.cards.items():
        _add_model_routes(router, f"/models/{name}", name, card, settings, metrics, body, schemas)
    if registry.default is not None:
        default_card = registry.cards[registry.default][1]
        _add_model_routes(
            router,
            "",
            registry.default,
            default_card,
            settings,
            metrics,
            body,
            schemas,
            default=True,
        )

    else:
        # No card to shape a default route from: the service cannot serve and says why.
        @router.post("/predict", include_in_schema=False)
        @router.post("/recommend", include_in_schema=False)
        async def no_default(registry: RegistryDep) -> Response:
            raise NotReadyError(registry.reason())

    # Any other /models/NAME/... is a model that is not loaded: say so, and list what is.
    @router.post("/models/{name}/predict", include_in_schema=False)
    @router.post("/models/{name}/recommend", include_in_schema=False)
    async def unknown_model(name: str, registry: RegistryDep) -> Response:
        raise ModelNotFoundError(name, list(registry.cards))

    return router, schemas


def _add_model_routes(
    router: APIRouter,
    prefix: str,
    name: str,
    card: ModelCard,
    settings: Settings,
    metrics: Metrics,
    body: Any,
    schemas: dict[str, type[BaseModel]],
    default: bool = False,
) -> None:
    predict_model = predict_request_model(card, settings)
    recommend_model = recommend_request_model(card, settings)
    schemas[predict_model.__name__] = predict_model
    schemas[recommend_model.__name__] = recommend_model
    tag = "default model" if default else f"model {name}"
    which = f"the default model ({name})" if default else name
    inference = metrics.inference
    rows_scored = metrics.rows

    def predict(request: Request, raw: body, registry: RegistryDep) -> Response:
        bundle = registry.get(name)
        _mark(request, bundle)
        payload = _parse(predict_model, raw)
        started = time.perf_counter()
        probabilities = scoring.predict(bundle, payload.rows)
        inference.labels(name, "predict").observe(time.perf_counter() - started)
        rows_scored.labels(name, "predict").inc(len(probabilities))
        threshold = bundle.card.threshold
        return json_response(
            {
                "model": name,
                "version": bundle.card.version,
                "threshold": threshold,
                "predictions": [
                    {"probability": p, "label": p >= threshold} for p in probabilities.tolist()
                ],
            }
        )

    def recommend(request: Request, raw: body, registry: RegistryDep) -> Response:
        bundle = registry.get(name)
        _mark(request, bundle)
        payload = _parse(recommend_model, raw)
        started = time.perf_counter()
        ranking = scoring.recommend(
            bundle,
            user_id=payload.user_id,
            features=payload.features,
            candidates=payload.candidates,
            exclude=payload.exclude,
            k=payload.k,
        )
        inference.labels(name, "recommend").observe(time.perf_counter() - started)
        rows_scored.labels(name, "recommend").inc(ranking.scored)
        return json_response(
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
