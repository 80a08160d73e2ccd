"""Password hashing with argon2id (argon2-cffi), bounded so a burst of logins cannot exhaust memory.

argon2id's default cost is 64 MiB and a few tens of milliseconds per hash, on purpose. A web server
with 40 worker threads doing that at once would want 2.5 GiB, so hashing goes through a semaphore
sized to the CPU count: extra logins wait their turn instead of swapping the machine.
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@dataclass(frozen=True)
class PasswordPolicy:
    """argon2id cost; the defaults are argon2-cffi's (RFC 9106 low-memory profile)."""

    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 4
    concurrent: int = max(1, os.cpu_count() or 1)


class Passwords:
    def __init__(self, policy: PasswordPolicy | None = None) -> None:
        p = policy or PasswordPolicy()
        self._hasher = PasswordHasher(time_cost=p.time_cost, memory_cost=p.memory_cost_kib, parallelism=p.parallelism)
        self._slots = threading.BoundedSemaphore(p.concurrent)
        # Verified against when the user does not exist, so that case takes as long as a wrong password.
        self._decoy = self.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when `password` matches. A hash that is not argon2 (the legacy data's) never matches."""
        with self._slots:
            try:
                return self._hasher.verify(stored_hash or self._decoy, password) and stored_hash is not None
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return False
