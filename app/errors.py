"""One error type for the service and one JSON shape for every error response."""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """A failure the caller can act on: an HTTP status, a stable code and a message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}


class ModelNotFoundError(ServiceError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            404,
            "model_not_found",
            f"no model named {name!r}; loaded: {', '.join(known) or 'none'}",
        )


class NotReadyError(ServiceError):
    def __init__(self, reason: str) -> None:
        super().__init__(503, "not_ready", reason, headers={"Retry-After": "1"})


def loggable(text: str) -> str:
    """Text from a request made safe for a log line: control characters (a percent-encoded
    newline in a path, say) escaped, so a caller cannot forge lines."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


INTERNAL = ServiceError(500, "internal_error", "internal error; see the logs")


class InternalErrorMiddleware:
    """The innermost middleware of the routed paths (the scoring paths have their own, in
    app.dispatch): a bug becomes the JSON 500 here, inside the others, so that
    the answer passes back through them and carries the request id, the CORS headers and its
    status in the metrics and access log like any other (Starlette's own handler for it sits
    outside every middleware). A caller that went away is not a bug: ClientDisconnect passes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ClientDisconnect:
            raise
        except Exception:
            if started:
                raise  # the answer had started: nothing more can be sent
            log.exception("unhandled error on %s %s", scope["method"], loggable(scope["path"]))
            await error_response(INTERNAL)(scope, receive, send)


def error_response(exc: ServiceError) -> Response:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.details:
        body["details"] = exc.details
    return Response(
        orjson.dumps({"error": body}),
        status_code=exc.status,
        media_type="application/json",
        headers=exc.headers,
    )


def _field_path(loc: tuple[int | str, ...]) -> str:
    """("rows", 3, "Browser") -> "rows[3].Browser"."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# The steps pydantic adds to an error's location inside a union (a number is an integer or a
# fraction): they name no field, so they are dropped.
_UNION_STEP = re.compile(r"^(int|float|str|bool|function-(after|before|plain)\[.*\])$")


def _is_union_step(part: int | str) -> bool:
    return isinstance(part, str) and _UNION_STEP.match(part) is not None


def validation_details(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic errors as {field, problem} (and the row where a row is at fault), one per field:
    for a number, the last branch's complaint (the fraction's) says the most."""
    by_field: dict[str, dict[str, Any]] = {}
    for e in errors:
        loc = tuple(e["loc"])
        if loc[:1] == ("body",):  # FastAPI's prefix for a request body
            loc = loc[1:]
        # An unknown field's name is the last step, whatever it is (a field may be called "int").
        last = loc[-1:] if e["type"] == "extra_forbidden" else ()
        loc = tuple(p for p in loc[: len(loc) - len(last)] if not _is_union_step(p)) + last
        item: dict[str, Any] = {"field": _field_path(loc) or "body", "problem": e["msg"]}
        if len(loc) >= 2 and loc[0] == "rows" and isinstance(loc[1], int):
            item["row"] = loc[1]
        elif len(loc) >= 3 and loc[0] == "columns" and isinstance(loc[2], int):
            item["row"] = loc[2]
        by_field[item["field"]] = item
    return list(by_field.values())


def invalid_request(exc: ValidationError) -> ServiceError:
    """A request body that does not fit its schema: 400 for bad JSON, 422 for bad values."""
    errors = exc.errors(include_url=False, include_input=False)
    if any(e["type"] == "json_invalid" for e in errors):
        problem = next(e["msg"] for e in errors if e["type"] == "json_invalid")
        return ServiceError(400, "malformed_json", f"the body is not valid JSON: {problem}")
    details = validation_details(errors)
    count = len(details)
    return ServiceError(
        422,
        "invalid_request",
        f"{count} problem{'s' if count != 1 else ''} in the request",
        details,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure, ours and the framework's, to the one JSON error shape."""

    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _framework_validation(_: Request, exc: RequestValidationError) -> Response:
        details = validation_details(list(exc.errors()))
        return error_response(
            ServiceError(
                422, "invalid_request", f"{len(details)} problem(s) in the request", details
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        # Keep the framework's headers: a 405 must say which methods are Allowed.
        headers = dict(exc.headers or {})
        return error_response(ServiceError(exc.status_code, code, message, headers=headers))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, loggable(request.url.path))
        return error_response(INTERNAL)
