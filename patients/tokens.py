"""Patient link tokens: random, shown once, stored as their SHA-256, looked up in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings

TOKEN_BYTES = 32  # 256 bits from the OS's CSPRNG: no guessing, no need to sign on top
TOKEN_MAX_LENGTH = 64  # token_urlsafe(32) is 43 characters; anything longer is not a token


def new_token() -> str:
    """Return a fresh random token (URL-safe base64)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """Return the SHA-256 hex digest stored for ``token``."""
    return hashlib.sha256(token.encode("utf-8", errors="surrogatepass")).hexdigest()


def digests_match(stored: str, computed: str) -> bool:
    """Return True when two digests are equal, compared in constant time."""
    return hmac.compare_digest(stored.encode(), computed.encode())


def address_hash(address: str | None) -> str:
    """Return a keyed hash of a client address: the log can tell repeats apart, never recover the address."""
    return hmac.new(settings.SECRET_KEY.encode(), (address or "").encode(), hashlib.sha256).hexdigest()
