"""The AWS JSON 1.0 front end: one POST route that routes on ``X-Amz-Target``.

Every failure, whatever its cause, leaves as an SWF-shaped JSON error: a client of the dev
server must see what it would see from SWF, never an HTML page or a traceback.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from typing import Any, Final

import structlog
from aiohttp import web

from ._engine import Engine
from ._faults import Faults, drop_connection
from ._model import (
    SERIALIZATION_EXCEPTION,
    UNKNOWN_OPERATION_EXCEPTION,
    VALIDATION_EXCEPTION,
    SWFError,
    validator_for,
)
from ._observers import Observers
from ._queue import POLL_CONNECTION_OPEN
from ._state import REGION
from ._status_page import status_routes

__all__ = ["ENGINE_KEY", "FAULTS_KEY", "OBSERVERS_KEY", "build_app"]

_TARGET_PREFIX: Final = "SimpleWorkflowService."
_CONTENT_TYPE: Final = "application/x-amz-json-1.0"
_BODY_MAX: Final = 1024 * 1024  # SWF's request size limit
_INTERNAL_FAILURE: Final = "com.amazon.coral.service#InternalFailure"
NESTING_MAX: Final = 32
"""Deepest nesting of objects and lists accepted in a request body. SWF's deepest input
(a decision's attributes) nests five levels; anything far deeper is an attack or a bug, and
the JSON decoder would recurse once per level."""
# "Credential=AKID/20240101/eu-west-3/swf/aws4_request" in a SigV4 Authorization header.
_CREDENTIAL_REGION: Final = re.compile(r"Credential=[^/,\s]+/[0-9]{8}/([a-z0-9-]+)/")
_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKET: Final = re.compile(rb"[\[\]{}]")

ENGINE_KEY: Final = web.AppKey("engine", Engine)
FAULTS_KEY: Final = web.AppKey("faults", Faults)
OBSERVERS_KEY: Final = web.AppKey("observers", Observers)

_log = structlog.get_logger("heartbeat_worker.devserver")
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _answer(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=_dumps(body).encode(),
        status=status,
        content_type=_CONTENT_TYPE,
        headers={"x-amzn-RequestId": str(uuid.uuid4())},
    )


def _error(error: SWFError) -> web.Response:
    return _answer(error.body(), error.status)


async def _call(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    target = request.headers.get("X-Amz-Target", "")
    operation = target[len(_TARGET_PREFIX) :] if target.startswith(_TARGET_PREFIX) else ""
    validate = validator_for(operation) if operation else None
    sync_handler = engine.sync_handlers.get(operation)
    async_handler = engine.async_handlers.get(operation) if sync_handler is None else None
    observers = request.app[OBSERVERS_KEY]
    fault = None
    body: Any = None
    try:
        if validate is None or (sync_handler is None and async_handler is None):
            known = validate is not None
            raise SWFError(
                UNKNOWN_OPERATION_EXCEPTION,
                f"Operation {operation} is not emulated by the heartbeat-worker dev server"
                if known
                else f"Unknown operation: X-Amz-Target {target!r}",
            )
        # Injected faults (_faults.py): all but a lost reply act before anything is applied.
        fault = await request.app[FAULTS_KEY].before(operation)
        if fault == "drop":
            return drop_connection(request)
        if request.content_length is not None and request.content_length > _BODY_MAX:
            raise SWFError(VALIDATION_EXCEPTION, "Request body exceeds the 1 MB limit", 413)
        body = decode_body(await request.read())
        validate(body)
        region = _CREDENTIAL_REGION.search(request.headers.get("Authorization", ""))
        if region is not None:
            REGION.set(region.group(1))
        if sync_handler is not None:
            result = sync_handler(body)
        else:
            assert async_handler is not None
            POLL_CONNECTION_OPEN.set(functools.partial(_connection_open, request))
            result = await async_handler(body)
        engine.commit()
        observers.notify(operation, body, result)
    except SWFError as exc:
        if isinstance(body, dict):  # a valid request the engine refused
            try:
                observers.notify(operation, body, None, exc.code)
            except Exception:
                return _internal_failure(operation)
        return _error(exc)
    except web.HTTPRequestEntityTooLarge:
        return _error(SWFError(VALIDATION_EXCEPTION, "Request body exceeds the 1 MB limit", 413))
    except Exception:
        return _internal_failure(operation)
    if fault == "drop-reply":
        return drop_connection(request)
    return _answer(result)


def _internal_failure(operation: str) -> web.Response:
    _log.exception("devserver.internal_failure", operation=operation)
    return _error(SWFError(_INTERNAL_FAILURE, "Internal failure of the dev server", 500))


def _connection_open(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


def _nesting(raw: bytes) -> int:
    depth = deepest = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b"", raw)):
        if bracket.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def decode_body(raw: bytes) -> Any:
    """The request's JSON, or a ``SerializationException`` for a body that is not JSON or
    nests deeper than :data:`NESTING_MAX`."""
    if not raw:
        return {}
    # Counting brackets is one pass in C; the exact depth is worked out only for bodies with
    # more brackets than the limit, which a heartbeat or a poll never has.
    if raw.count(b"[") + raw.count(b"{") > NESTING_MAX and _nesting(raw) > NESTING_MAX:
        raise SWFError(
            SERIALIZATION_EXCEPTION,
            f"The JSON body nests deeper than {NESTING_MAX} levels",
        )
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        reason = "nests too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise SWFError(SERIALIZATION_EXCEPTION, f"Malformed JSON body: {reason}") from None


def build_app(
    engine: Engine, faults: Faults | None = None, observers: Observers | None = None
) -> web.Application:
    app = web.Application(client_max_size=_BODY_MAX + 1024)
    app[ENGINE_KEY] = engine
    app[FAULTS_KEY] = faults or Faults()
    app[OBSERVERS_KEY] = observers or Observers()
    app.router.add_post("/", _call)
    app.add_routes(status_routes(engine))  # GET / and /status.json: _status_page.py
    return app
