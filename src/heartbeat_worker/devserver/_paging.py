"""Opaque page tokens shared by every paged operation.

A token records which listing it belongs to, a digest of the query that produced it (every
member but the token and the page size) and where the next page starts, so that a token
handed to another listing, or to the same listing with other filters or another order, is
refused instead of silently returning a page of a different list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from ._model import VALIDATION_EXCEPTION, SWFError

__all__ = ["decode_page_token", "encode_page_token", "page", "query_key"]

DEFAULT_PAGE_SIZE = 1000
_UNBOUND = frozenset({"nextPageToken", "maximumPageSize", "identity"})


def query_key(body: dict[str, Any], scope: str = "") -> str:
    """``scope`` and a digest of the query members of ``body``, to bind a page token to."""
    query = {name: value for name, value in body.items() if name not in _UNBOUND}
    text = json.dumps(query, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{scope}#{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def encode_page_token(kind: str, key: str, offset: int) -> str:
    raw = json.dumps([kind, key, offset], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_page_token(token: str, kind: str) -> tuple[str, int]:
    try:
        found_kind, key, offset = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        found_kind = key = offset = None
    if found_kind != kind or not isinstance(key, str) or not isinstance(offset, int):
        raise SWFError(VALIDATION_EXCEPTION, "The nextPageToken is invalid for this request")
    return key, offset


def page(
    items: list[Any], body: dict[str, Any], member: str, kind: str, key: str = ""
) -> dict[str, Any]:
    """One page of ``items`` under ``member``, honouring the request's paging members."""
    key = query_key(body, key)
    size = body.get("maximumPageSize") or DEFAULT_PAGE_SIZE
    if body.get("reverseOrder"):
        items = items[::-1]
    start = 0
    token = body.get("nextPageToken")
    if token:
        token_key, start = decode_page_token(token, kind)
        if token_key != key:
            raise SWFError(
                VALIDATION_EXCEPTION,
                "The nextPageToken was issued for another query: repeat the request's filters "
                "and order unchanged when asking for the next page",
            )
    end = start + size
    result: dict[str, Any] = {member: items[start:end]}
    if end < len(items):
        result["nextPageToken"] = encode_page_token(kind, key, end)
    return result
