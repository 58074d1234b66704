"""Resume tokens: which run and which pause, signed with HMAC-SHA256, expiring.

A token is ``cm1.<payload>.<signature>`` (URL-safe base64): the payload is the run id, the
pause's version and the expiry time. It names one pause: once a resume claimed that version,
the same token is refused (the store's ``claim`` enforces it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass

from ..errors import CodemodeError

KEY_ENV = "CODEMODE_APPROVAL_KEY"
_PREFIX = "cm1"


class InvalidResumeToken(CodemodeError, ValueError):
    """A token that is malformed, forged, tampered with, or expired."""


@dataclass(frozen=True)
class TokenClaims:
    run_id: str
    version: int
    expires_at: float


def signing_key(key: bytes | str | None) -> bytes:
    """``key``, else ``$CODEMODE_APPROVAL_KEY``, else a random key of this process (tokens
    then resume only in this process)."""
    if key is None:
        key = os.environ.get(KEY_ENV) or secrets.token_bytes(32)
    data = key.encode() if isinstance(key, str) else bytes(key)
    if len(data) < 16:
        raise ValueError("an approval key needs 16 bytes or more")
    return data


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, f"{_PREFIX}.{payload}".encode(), hashlib.sha256).digest())


def make_token(key: bytes, run_id: str, version: int, ttl: float) -> tuple[str, float]:
    """A token for pause ``version`` of ``run_id``, valid for ``ttl`` seconds; and its expiry."""
    expires_at = time.time() + ttl
    payload = _b64(json.dumps({"r": run_id, "v": version, "e": expires_at}, separators=(",", ":")).encode())
    return f"{_PREFIX}.{payload}.{_signature(key, payload)}", expires_at


def read_token(key: bytes, token: str) -> TokenClaims:
    """The claims of a genuine, unexpired token; :class:`InvalidResumeToken` otherwise."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3 or parts[0] != _PREFIX:
        raise InvalidResumeToken("not a codemode resume token")
    if not hmac.compare_digest(parts[2], _signature(key, parts[1])):
        raise InvalidResumeToken("the resume token's signature does not match (forged, altered, another key)")
    try:
        claims = json.loads(_unb64(parts[1]))
        run_id, version, expires_at = str(claims["r"]), int(claims["v"]), float(claims["e"])
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidResumeToken("the resume token's payload is malformed") from e
    if time.time() > expires_at:
        raise InvalidResumeToken("the resume token has expired")
    return TokenClaims(run_id, version, expires_at)
