"""Who may call, and how much at once: API keys, the concurrency cap and the request timeout.

Pure ASGI middleware (no per-request task or body buffering), answering in the service's one
JSON error shape. Health checks pass every guard: an orchestrator must always be able to ask.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import ServiceError, error_response, loggable

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/health/live", "/health/ready"})


class ApiKeyMiddleware:
    """Every request but the health checks needs one of the keys, as `Authorization: Bearer K`
    or `X-API-Key: K`. Keys are compared in constant time, against every key, and the 401 does
    not say what was wrong."""

    def __init__(self, app: ASGIApp, keys: list[str]) -> None:
        self.app = app
        self.keys = [k.encode() for k in keys]

    def _allowed(self, scope: Scope) -> bool:
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:].strip()
            elif name == b"x-api-key":
                given = value.strip()
        # No early exit: the time taken does not depend on which key, if any, matched.
        matched = False
        for key in self.keys:
            matched |= hmac.compare_digest(given, key)
        return matched and bool(given)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        response = error_response(
            ServiceError(
                401,
                "unauthorized",
                "missing or invalid API key",
                headers={"WWW-Authenticate": 'Bearer realm="propensity"'},
            )
        )
        await response(scope, receive, send)


class LimitsMiddleware:
    """At most `max_concurrency` requests at once (health checks aside): one more gets 503 with
    Retry-After at once instead of waiting in an unbounded queue. A request not answered within
    `timeout` seconds gets 504 (if its answer has not started: ObservabilityMiddleware, which
    sits outside, records its status in the request's state when it does).

    The timeout is kept by one watchdog task that looks at the deadlines a few times a timeout
    (so it fires up to a tenth of the timeout late), not by a timer per request: under load a
    timer per request cost more than scoring a row.
    """

    def __init__(self, app: ASGIApp, max_concurrency: int, timeout: float) -> None:
        self.app = app
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.in_flight = 0
        self.deadlines: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self.watchdog: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        interval = max(0.01, min(0.25, self.timeout / 10))
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for task, deadline in list(self.deadlines.items()):
                if deadline <= now and task not in self.expired:
                    self.expired.add(task)
                    task.cancel()

    def _ensure_watchdog(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.watchdog is None or self.watchdog.done() or self.watchdog.get_loop() is not loop:
            self.watchdog = loop.create_task(self._watch())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_concurrency:
            busy = ServiceError(
                503,
                "overloaded",
                f"the service is handling {self.in_flight} requests, its limit; retry shortly",
                headers={"Retry-After": "1"},
            )
            await error_response(busy)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self._ensure_watchdog(loop)
        self.deadlines[task] = loop.time() + self.timeout
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            if task not in self.expired:
                raise  # not ours: the client went away, or the server is stopping
            task.uncancel()
            log.warning(
                "%s %s timed out after %g s", scope["method"], loggable(scope["path"]), self.timeout
            )
            if "status" not in state:
                late = ServiceError(
                    504, "timeout", f"no answer within {self.timeout:g} s; try a smaller request"
                )
                await error_response(late)(scope, receive, send)
        finally:
            del self.deadlines[task]
            self.expired.discard(task)
            # A request that timed out while its work ran in a worker thread keeps its slot
            # until the thread is done: a thread cannot be stopped, and the cap bounds the
            # work the process does, not only the requests it is answering.
            work = state.get("work")
            if work is not None and not work.done():
                work.add_done_callback(self._release)
            else:
                self.in_flight -= 1

    def _release(self, _: object) -> None:
        self.in_flight -= 1


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight in the service's JSON error shape (it answers
    in plain text) so every error a client sees parses alike."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        headers = {
            k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")
        }
        problem = bytes(response.body).decode()  # "Disallowed CORS origin, headers"
        return error_response(ServiceError(400, "cors_refused", problem, headers=headers))
