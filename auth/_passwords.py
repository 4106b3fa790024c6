"""Password hashing with argon2id (argon2-cffi's defaults: RFC 9106's low-memory profile).

Deliberately slow (tens of ms): callers run it off the event loop and cache
successful verifications (:func:`auth.cache_key`).
"""

from __future__ import annotations

__all__ = ["hash_password", "verify_password"]


def hash_password(password: str) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return PasswordHasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
