"""Passwords (argon2), JWT access tokens, hashed API keys, the client address and a small login rate limiter."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_address

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


def create_token(user_id: int, secret: str, minutes: int, version: int = 0) -> str:
    """A signed JWT naming the user and their token version (a password change bumps it, revoking the token)."""
    now = utcnow()
    claims = {
        "sub": str(user_id),
        "ver": version,
        "iat": now,
        "exp": now + timedelta(minutes=minutes),
        "typ": "access",
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(token: str, secret: str) -> tuple[int, int] | None:
    """(user id, token version) of a valid, unexpired token, else None."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "ver"]})
        user_id, version = int(claims["sub"]), claims["ver"]
    except (jwt.PyJWTError, ValueError):
        return None
    if claims.get("typ") != "access" or not 0 < user_id <= MAX_ID or type(version) is not int:
        return None
    return user_id, version


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


Network = IPv4Network | IPv6Network


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(peer: str | None, forwarded_for: Iterable[str], proxies: Sequence[Network]) -> str:
    """The address a request came from: the peer, unless the peer is a trusted proxy; then the nearest address in
    X-Forwarded-For that is not a trusted proxy (each proxy appends what it saw, so the list is read from the right
    and whatever a client wrote itself, further left, is never reached)."""
    if peer is None:
        return "unknown"
    address = peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    while _trusted(address, proxies) and hops:
        hop = hops.pop()
        try:
            address = str(ip_address(hop))
        except ValueError:
            break  # garbage behind a trusted proxy: count it against that proxy's address
    return address


class LoginLimiter:
    """Failed logins in a sliding window, per account, per client address and per (account, address); in-process,
    which is enough for one server.

    An address may try an account until it has failed on it `per_account` times; once the account (from all
    addresses) or the address (on all accounts) is over its own limit, one failure of that address on that account is
    enough. An address that has not failed on an account may always try it once: a correct password is never locked
    out by someone else's failures, while an attack on one account gets one guess per new address and an attack from
    one address one guess per account.
    """

    def __init__(self, per_client: int, per_account: int, window_s: float) -> None:
        self.per_client, self.per_account, self.window_s = per_client, per_account, window_s
        self._failures: dict[tuple[str, ...], deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, account: str, client: str) -> int:
        """Seconds until the client may try the account again (0: now)."""
        with self._lock:
            now = time.monotonic()
            pair = self._times(("pair", account, client), now)
            if not pair:
                return 0
            over = (
                len(self._times(("account", account), now)) >= self.per_account
                or len(self._times(("client", client), now)) >= self.per_client
            )
            allowed = 1 if over else self.per_account
            if len(pair) < allowed:
                return 0
            # Until enough of this address's own failures on the account have left the window.
            return max(1, int(pair[len(pair) - allowed] + self.window_s - now) + 1)

    def failed(self, account: str, client: str) -> None:
        """Record a failed attempt."""
        with self._lock:
            now = time.monotonic()
            if len(self._failures) > 100_000:
                self._forget_old(now)
            for key in (("pair", account, client), ("account", account), ("client", client)):
                self._failures.setdefault(key, deque()).append(now)

    def clear(self) -> None:
        """Forget every failure."""
        with self._lock:
            self._failures.clear()

    def _times(self, key: tuple[str, ...], now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def _forget_old(self, now: float) -> None:
        # Keys of long-gone attempts would otherwise pile up (one per username an attacker makes up).
        for key in list(self._failures):
            self._times(key, now)
