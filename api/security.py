"""Passwords (argon2), JWT access tokens, hashed API keys and a small login rate limiter."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import defaultdict, deque
from datetime import timedelta

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from models.base import utcnow

ALGORITHM = "HS256"
# Row ids are PostgreSQL `integer`s: a larger number names no row (and SQLite cannot even bind one past 2**63).
MAX_ID = 2**31 - 1
_hasher = PasswordHash((Argon2Hasher(),))
# A hash to verify against when the user does not exist, so that timing does not tell who has an account.
_DUMMY_HASH = _hasher.hash("no-such-user")


def hash_password(password: str) -> str:
    """An argon2 hash of the password."""
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when the password matches; spends the same time when there is no user."""
    if password_hash is None:
        _hasher.verify(password, _DUMMY_HASH)
        return False
    return _hasher.verify(password, password_hash)


def create_token(user_id: int, secret: str, minutes: int) -> str:
    """A signed JWT naming the user."""
    now = utcnow()
    claims = {"sub": str(user_id), "iat": now, "exp": now + timedelta(minutes=minutes), "typ": "access"}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(token: str, secret: str) -> int | None:
    """The user id of a valid, unexpired token, else None."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
        user_id = int(claims["sub"])
    except (jwt.PyJWTError, ValueError):
        return None
    return user_id if claims.get("typ") == "access" and 0 < user_id <= MAX_ID else None


def new_api_key() -> tuple[str, str, str]:
    """A fresh API key as (full key shown once, lookup prefix, stored hash)."""
    prefix = secrets.token_hex(6)
    key = f"vm_{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, hash_api_key(key)


def hash_api_key(key: str) -> str:
    """API keys are long random strings, so a plain SHA-256 suffices (and keeps each request cheap)."""
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_prefix(key: str) -> str | None:
    """The lookup prefix of a key shaped like ours."""
    # The random tail may itself contain "_", so split off only the two leading parts.
    parts = key.split("_", 2)
    return parts[1] if len(parts) == 3 and parts[0] == "vm" else None


def same_hash(a: str, b: str) -> bool:
    """Constant-time comparison."""
    return secrets.compare_digest(a, b)


class LoginLimiter:
    """Counts failed logins per client in a sliding window; in-process, which is enough for one server."""

    def __init__(self, allowed: int, window_s: float) -> None:
        self.allowed, self.window_s = allowed, window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Seconds until the client may try again (0: now)."""
        with self._lock:
            times = self._prune(client, time.monotonic())
            if len(times) < self.allowed:
                return 0
            return max(1, int(times[0] + self.window_s - time.monotonic()) + 1)

    def failed(self, client: str) -> None:
        """Record a failed attempt."""
        with self._lock:
            self._prune(client, time.monotonic()).append(time.monotonic())

    def _prune(self, client: str, now: float) -> deque[float]:
        times = self._failures[client]
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times
