"""Who runs a local server process (PostgreSQL, PgBouncer): the caller, or an unprivileged account
when the caller is root, since both servers refuse to run as root; and how such a process is ended.

LocalCluster and LocalPgBouncer share this: the account, the subprocess arguments that switch to
it, and a directory that account owns and can reach through its parents.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
from pathlib import Path
from typing import Any

from pgferry.errors import ServerError

UNPRIVILEGED_USERS = ("postgres", "nobody")


def server_account() -> pwd.struct_passwd | None:
    """The unprivileged account to run a server as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServerError("running as root and no unprivileged user (postgres, nobody) exists to run a server")


def as_server_account() -> dict[str, Any]:
    """subprocess keyword arguments that run the child as `server_account()` (none when not root)."""
    account = server_account()
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def end_process(proc: subprocess.Popen[bytes] | None, how: signal.Signals = signal.SIGTERM) -> None:
    """Send `how` to a local server process we started, wait, and SIGKILL it if it has not ended in 10 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(how)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def give_to_server_account(*paths: Path) -> None:
    """Make `paths` (which exist) the server account's, reachable through their parents; a no-op when
    not root."""
    account = server_account()
    if account is None:
        return
    for path in paths:
        os.chown(path, account.pw_uid, account.pw_gid)
        for parent in path.parents:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o001)
