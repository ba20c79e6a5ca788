"""The scoring routes served straight from ASGI, ahead of the framework's router.

For a one-row /predict the model's graph runs in about 11 µs; FastAPI's router, request and
response objects and exception middleware cost several times that on every request. So the
scoring paths are answered here, by handlers that take the ASGI scope and return the answer's
bytes, behind the same middleware as every other route (request id, metrics and access log,
CORS, API keys, limits) and in the same JSON error shape. Another method on a scoring path is
answered 405 here, a trailing slash redirected as the router would; every other path goes on to
the router. The FastAPI routes that describe these paths in /docs are never routed (see
`app.routes`).

Small requests are scored on the event loop: for a few rows the work is shorter than parsing
the request, and a hop to a worker thread would cost more than the work itself. Anything larger
runs in a worker thread, so the event loop is never held for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL
from starlette.requests import ClientDisconnect
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import INTERNAL, ServiceError, error_response, loggable

log = logging.getLogger(__name__)

JSON = "application/json"
# A scoring handler reads the request and returns the JSON answer, or raises ServiceError.
Handler = Callable[[Scope, Receive], Awaitable[bytes]]
_JSON_HEADER = (b"content-type", JSON.encode())


class ScoringDispatch:
    """A POST to a scoring path goes to its handler, everything else to the app inside (another
    method on a scoring path is a 405 that says Allow: POST).

    The answer is sent here, after the handler has returned: so a ServiceError becomes its JSON
    error and a bug the JSON 500 without watching the messages sent (the InternalErrorMiddleware
    inside does that for the other routes).
    """

    def __init__(self, app: ASGIApp, routes: dict[str, Handler]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        handler = self.routes.get(path)
        if handler is None:
            if path.endswith("/") and path[:-1] in self.routes:
                url = URL(scope=scope)
                await RedirectResponse(url.replace(path=url.path[:-1]), 307)(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            refused = ServiceError(
                405, "method_not_allowed", "Method Not Allowed", headers={"Allow": "POST"}
            )
            await error_response(refused)(scope, receive, send)
            return
        try:
            answer = await handler(scope, receive)
        except ServiceError as exc:
            await error_response(exc)(scope, receive, send)
        except ClientDisconnect:
            raise
        except Exception:
            log.exception("unhandled error on POST %s", loggable(scope["path"]))
            await error_response(INTERNAL)(scope, receive, send)
        else:
            await send_json(send, answer)


def _route_path(scope: Scope) -> str:
    """The path the routes are matched against: without the root path the server was given
    (`--root-path`), where the path starts with it as a whole segment."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


async def send_json(send: Send, body: bytes) -> None:
    """A 200 with a JSON body already serialised."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [_JSON_HEADER, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_json_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The body of a JSON request, refusing other content types and bodies over `limit`."""
    ctype = declared = None
    for name, value in scope["headers"]:
        if name == b"content-type" and ctype is None:
            ctype = value
        elif name == b"content-length" and declared is None:
            declared = value
    media = (ctype or b"").decode("latin-1").split(";", 1)[0].strip().lower()
    if media != JSON and not media.endswith("+json"):
        raise ServiceError(
            415,
            "unsupported_media_type",
            f"send the body as application/json, not {media or 'no content type'}",
        )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ServiceError(413, "body_too_large", f"the body exceeds {limit} bytes")
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
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


async def run_work(state: dict[str, Any], inline: bool, fn: Callable[..., Any], *args: Any) -> Any:
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
