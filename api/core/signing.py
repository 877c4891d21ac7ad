"""The secret that signs access tokens. None ships in the code: it is the configured VARDMATCH_SECRET_KEY, or a random
one made for the process (the demo), or, by default, a random one kept with the data (table signing_secret, made by
the migrations and again here if the row is missing), so that every server of one database accepts the same tokens
and a restart logs nobody out."""

from __future__ import annotations

import secrets
import threading

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.core.settings import Settings
from models import SigningSecret
from models.db import transaction

SECRET_ROW = 1


def new_secret() -> str:
    """A strong random secret (64 URL-safe characters, 384 bits)."""
    return secrets.token_urlsafe(48)


def stored_secret(session: Session) -> str:
    """The database's signing secret, made now if it has none."""
    row = session.get(SigningSecret, SECRET_ROW)
    if row is not None:
        return row.secret
    try:
        with session.begin_nested():
            session.add(SigningSecret(id=SECRET_ROW, secret=new_secret()))
    except IntegrityError:  # another server made it at the same moment: use theirs
        pass
    secret = session.scalar(select(SigningSecret.secret).where(SigningSecret.id == SECRET_ROW))
    assert secret is not None
    return secret


class Signing:
    """Finds the signing secret once (lazily: the app may be built before its database is migrated)."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._secret = settings.secret_key
        if self._secret is not None:
            self.where = "the setting VARDMATCH_SECRET_KEY"
        elif settings.secret_per_process:
            self._secret = new_secret()
            self.where = "a random secret made for this process and kept in memory only (tokens end with it)"
        else:
            self.where = (
                "a random secret kept in the database, table signing_secret (set VARDMATCH_SECRET_KEY to use your own)"
            )
        self._lock = threading.Lock()

    def secret(self) -> str:
        """The secret tokens are signed and checked with."""
        if self._secret is None:
            with self._lock:
                if self._secret is None:
                    with transaction(self._sessions) as session:
                        self._secret = stored_secret(session)
        return self._secret
