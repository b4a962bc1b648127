"""What a failed SWF call means for a running worker, and how to log a run of failures.

Two decisions live here. First, which errors retrying cannot fix: access denied, credentials
that are rejected or expired and did not refresh, a domain deprecated or unknown (a dev
server restarted without its state). A worker that keeps polling after those only fills
its log, so it stops with one line saying what SWF refused and what to do. Everything else
(throttling, 5xx, connection trouble) is retried for as long as it lasts: an SWF outage must
not take a fleet of workers down with it.

Second, how an outage is logged. Each of the worker's slots retries on its own schedule, so
one line per slot and attempt turns a 20-second blip into dozens of identical errors.
:class:`FailureEpisode` logs the first failure of an episode (with the next delay), stays
quiet while it lasts, and logs its end with the attempt count and how long it took.
"""

from __future__ import annotations

from typing import Final

import anyio
from botocore.exceptions import ClientError, NoCredentialsError
from structlog.typing import FilteringBoundLogger

from ._swf import error_code

__all__ = ["FailureEpisode", "describe_error", "permanent_error_fix"]

_CREDENTIALS_FIX: Final = (
    "check the credentials of the standard AWS chain (AWS_PROFILE, AWS_ACCESS_KEY_ID...) "
    "and that they may call SWF"
)

_PERMANENT: Final[dict[str, str]] = {
    "AccessDeniedException": "grant the worker's credentials the swf:* actions on the domain",
    "AccessDenied": "grant the worker's credentials the swf:* actions on the domain",
    "OperationNotPermittedFault": "grant the worker's credentials the swf:* actions on the domain",
    "UnrecognizedClientException": _CREDENTIALS_FIX,
    "InvalidClientTokenId": _CREDENTIALS_FIX,
    "ExpiredTokenException": "the credentials expired and did not refresh; " + _CREDENTIALS_FIX,
    "ExpiredToken": "the credentials expired and did not refresh; " + _CREDENTIALS_FIX,
    "InvalidSignatureException": _CREDENTIALS_FIX,
    "SignatureDoesNotMatch": _CREDENTIALS_FIX,
    "MissingAuthenticationTokenException": _CREDENTIALS_FIX,
    "DomainDeprecatedFault": "the domain was deprecated: point the worker at another domain, "
    "or undeprecate it (aws swf undeprecate-domain)",
    "UnknownResourceFault": "SWF no longer knows the domain (a dev server restarted without "
    "its state?): register it again (heartbeat-worker register, or run --register)",
}
"""Error codes a poll can get that no retry fixes, and what a person does about each."""


def permanent_error_fix(error: BaseException) -> str | None:
    """What to do about ``error`` if retrying cannot fix it; None if it may pass."""
    if isinstance(error, NoCredentialsError):
        return _CREDENTIALS_FIX
    code = error_code(error)
    return None if code is None else _PERMANENT.get(code)


def describe_error(error: BaseException) -> str:
    """``Code: message`` for an SWF refusal, else the error's own one-line text."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code") or "error"
        message = details.get("Message") or details.get("message") or ""
        return f"{code}: {message}" if message else str(code)
    text = str(error) or type(error).__name__
    return " ".join(text.split())


class FailureEpisode:
    """Log a run of failures of one kind of call once, not once per caller and attempt.

    ``failed()`` on every failure and ``succeeded()`` on every success, from any number of
    callers (the worker's slots share one); the episode starts with the first failure and
    ends with the next success.
    """

    def __init__(self, log: FilteringBoundLogger, what: str) -> None:
        self._log = log
        self._what = what
        self._attempts = 0
        self._started_at = 0.0

    @property
    def failing(self) -> bool:
        """Whether an episode is under way (the last call failed)."""
        return self._attempts > 0

    def failed(self, error: BaseException, retry_in: float) -> None:
        self._attempts += 1
        if self._attempts == 1:
            self._started_at = anyio.current_time()
            self._log.warning(
                f"{self._what} failing; retrying until it recovers",
                error=describe_error(error),
                attempt=1,
                retry_in=round(retry_in, 2),
            )
        else:
            self._log.debug(
                f"{self._what} still failing",
                error=describe_error(error),
                attempt=self._attempts,
                retry_in=round(retry_in, 2),
            )

    def succeeded(self) -> None:
        if self._attempts:
            self._log.info(
                f"{self._what} recovered",
                failed_attempts=self._attempts,
                outage=round(anyio.current_time() - self._started_at, 1),
            )
            self._attempts = 0
