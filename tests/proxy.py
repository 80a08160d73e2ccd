"""A loopback TCP proxy a test can cut and restore (psycopg's tests/fix_proxy.py is the model): the
cutover and runtime tests need a server that vanishes mid-connection and comes back on the same port.

`cut()` closes every live connection through the proxy and refuses new ones (the client sees a
dropped connection, not an error the server chose to send); `restore()` listens again on the same
port. `stall()` accepts new connections and forwards nothing, until `restore()` (a server that hangs:
its TCP handshake succeeds, its answer never comes). Threads, not asyncio, so it serves any client
library.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from psycopg.conninfo import conninfo_to_dict, make_conninfo

LOOPBACK = "127.0.0.1"


class Proxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = _free_port()
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.live: set[socket.socket] = set()
        self.connections = 0  # accepted since start, for tests that count reconnects
        self.stalled = False

    def dsn(self, dsn: str) -> str:
        """`dsn` pointed at the proxy instead of the server."""
        params = conninfo_to_dict(dsn)
        params.update(host=LOOPBACK, port=str(self.port))
        return make_conninfo("", **params)

    def start(self) -> Proxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, self.port))
        listener.listen(64)
        with self.lock:
            self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="proxy-accept").start()
        return self

    def restore(self) -> Proxy:
        """Forward again (after a stall) or listen again (after a cut), on the same port."""
        with self.lock:
            self.stalled = False
            listening = self.listener is not None
        return self if listening else self.start()

    def stall(self) -> None:
        """Accept new connections but forward nothing through them (held until `cut()` or the end)."""
        with self.lock:
            self.stalled = True

    def cut(self) -> None:
        """Drop every connection through the proxy and stop listening."""
        with self.lock:
            listener, self.listener = self.listener, None
            live, self.live = self.live, set()
        if listener is not None:
            _close(listener)
        for sock in live:
            _close(sock)

    stop = cut

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _addr = listener.accept()
            except OSError:  # closed by cut()
                return
            with self.lock:
                if self.stalled:  # the handshake is done; nothing will ever be said on it
                    self.live.add(client)
                    continue
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self.lock:
                if self.listener is not listener:  # cut while connecting
                    _close(client)
                    _close(server)
                    return
                self.live |= {client, server}
                self.connections += 1
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True, name="proxy-pump").start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port
