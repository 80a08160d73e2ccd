"""Accounts and sessions: register, log in, log out, resolve a session token.

Session tokens are 256 random bits given to the client once; the database keeps only their SHA-256
(a stolen database yields no usable token, and a fast hash is enough for a random secret). Login
attempts are limited per username and per client address.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field

from forum.services import cachetags
from forum.services.passwords import PasswordPolicy, Passwords
from forum.services.ratelimit import SlidingWindow
from forum.services.units import Units, now_text
from forum.store.errors import Conflict, RateLimited, Unauthorized
from forum.store.records import SessionInfo, User


@dataclass(frozen=True)
class AuthPolicy:
    session_ttl_s: int = 30 * 86400
    login_per_user: int = 10  # attempts per window for one username
    login_per_address: int = 100  # attempts per window from one client address
    login_window_s: float = 60.0
    passwords: PasswordPolicy = field(default_factory=PasswordPolicy)


@dataclass
class SessionGrant:
    """What a successful register/login returns: the token (shown once) and the user."""

    token: str
    expires_at: str
    user: User

    def to_dict(self) -> dict[str, object]:
        return {"token": self.token, "expires_at": self.expires_at, "user": self.user.to_dict()}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class AuthService:
    def __init__(self, units: Units, policy: AuthPolicy | None = None) -> None:
        self.units = units
        self.repo = units.repo
        self.policy = policy or AuthPolicy()
        self.passwords = Passwords(self.policy.passwords)
        self._per_user = SlidingWindow(self.policy.login_per_user, self.policy.login_window_s)
        self._per_address = SlidingWindow(self.policy.login_per_address, self.policy.login_window_s)

    def _expiry(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + self.policy.session_ttl_s))

    def _open_session(self, user_id: int, ip: str | None, agent: str | None, now: str) -> tuple[str, str]:
        token = secrets.token_urlsafe(32)
        expires = self._expiry()
        self.repo.insert_session(token_hash(token), user_id, ip, agent, now, expires)
        return token, expires

    def register(
        self, username: str, email: str, password: str, display_name: str | None, ip: str | None, agent: str | None
    ) -> SessionGrant:
        """Create the account (user, stats row, session, activity) and log it in."""
        hashed = self.passwords.hash(password)  # slow on purpose: never inside the write lock
        now = now_text()
        with self.units.write() as changed:
            if self.repo.name_or_email_taken(username, email):
                raise Conflict("that username or email is already registered")
            user_id = self.repo.insert_user(username, email, hashed, display_name, now)
            changed.add(cachetags.stats(user_id))
            self.repo.insert_stats(user_id, now)
            token, expires = self._open_session(user_id, ip, agent, now)
            self.repo.log_activity(user_id, "register", ("user", user_id), ip, None, now)
            user = self.repo.user(user_id)
        assert user is not None
        return SessionGrant(token, expires, user)

    def login(self, username: str, password: str, ip: str | None, agent: str | None) -> SessionGrant:
        for limiter, key in ((self._per_user, username.casefold()), (self._per_address, ip or "?")):
            wait = limiter.hit(key)
            if wait:
                raise RateLimited("too many login attempts; wait and try again", SlidingWindow.retry_after(wait))
        with self.units.read():
            creds = self.repo.credentials(username)
        ok = self.passwords.verify(creds.password_hash if creds else None, password)
        if creds is None or not ok or creds.status != "active":
            raise Unauthorized("wrong username or password")
        now = now_text()
        rehash = self.passwords.hash(password) if self.passwords.needs_rehash(creds.password_hash) else None
        with self.units.write():
            token, expires = self._open_session(creds.user_id, ip, agent, now)
            self.repo.logged_in(creds.user_id, now)
            if rehash:
                self.repo.set_password_hash(creds.user_id, rehash, now)
            self.repo.log_activity(creds.user_id, "login", ("user", creds.user_id), ip, None, now)
            user = self.repo.user(creds.user_id)
        assert user is not None
        return SessionGrant(token, expires, user)

    def authenticate(self, token: str | None) -> SessionInfo:
        """The live session of `token`; 401 when missing, unknown, expired or logged out."""
        if not token:
            raise Unauthorized("log in first: send Authorization: Bearer <token>")
        with self.units.read():
            session = self.repo.session(token_hash(token), now_text())
        if session is None:
            raise Unauthorized("the session is unknown, expired or logged out; log in again")
        return session

    def logout(self, session: SessionInfo, ip: str | None) -> None:
        now = now_text()
        with self.units.write():
            self.repo.end_session(session.session_id)
            self.repo.log_activity(session.user_id, "logout", ("user", session.user_id), ip, None, now)

    def set_role(self, user_id: int, role: str) -> bool:
        """Make a user an admin (or back): an operator's action, not an API endpoint."""
        with self.units.write():
            return self.repo.set_role(user_id, role, now_text())
