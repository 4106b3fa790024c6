"""Credentials: parse ``Authorization`` headers, mint and fingerprint API tokens (pure, stdlib only)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from typing import NamedTuple

from producer.errors import UnauthenticatedError

__all__ = ["BasicCredentials", "BearerCredentials", "parse_authorization", "TOKEN_PREFIX", "new_token",
           "token_sha256", "cache_key", "looks_like_token"]

#: Every API token starts with this, so a token pasted as a Basic password is recognised as one.
TOKEN_PREFIX = "rlt_"


class BasicCredentials(NamedTuple):
    username: str
    password: str


class BearerCredentials(NamedTuple):
    token: str


def parse_authorization(header: str) -> BasicCredentials | BearerCredentials | None:
    """The credentials of an ``Authorization`` header; None when there is none; UnauthenticatedError if malformed."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise UnauthenticatedError("malformed Basic credentials: expected base64 of 'username:password'") from exc
        username, sep, password = decoded.partition(":")
        if not sep or not username:
            raise UnauthenticatedError("malformed Basic credentials: expected base64 of 'username:password'")
        return BasicCredentials(username, password)
    if scheme == "bearer":
        if not value:
            raise UnauthenticatedError("empty Bearer token")
        return BearerCredentials(value)
    raise UnauthenticatedError(f"unsupported authorization scheme {scheme!r}: use Basic or Bearer")


def new_token() -> str:
    """A fresh API token: the prefix and 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def looks_like_token(secret: str) -> bool:
    return secret.startswith(TOKEN_PREFIX)


def token_sha256(token: str) -> str:
    """What the log keeps of a token. A fast hash is enough: the token is 256 random bits, not a password."""
    return hashlib.sha256(token.encode()).hexdigest()


def cache_key(username: str, password: str) -> bytes:
    """The key of a verified (username, password) in the in-memory cache: a keyed BLAKE2b digest, never the
    password itself (the key is per process, so a memory dump does not give an offline-guessable digest)."""
    return hashlib.blake2b(f"{username}\x00{password}".encode(), key=_PROCESS_KEY, digest_size=32).digest()


_PROCESS_KEY = secrets.token_bytes(32)
