"""The listening socket `forum serve --workers N` hands its workers: accepted connections get TCP_NODELAY.

uvicorn's own bound socket reports protocol 0, so asyncio leaves Nagle's algorithm on for every accepted
connection and each keep-alive response waits for the client's delayed ACK (about 40 ms on Linux).
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn

from forum.web.serve import listening_socket


def _nodelay_of_accepted(sock: socket.socket) -> int:
    async def main() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                conn = transport.get_extra_info("socket")
                accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            flag = await asyncio.wait_for(accepted, 10)
            writer.close()
            return flag

    return asyncio.run(main())


def test_workers_listening_socket_gives_connections_tcp_nodelay() -> None:
    sock = listening_socket(uvicorn.Config(app="forum.web.app:create_app", host="127.0.0.1", port=0))
    assert sock.proto == socket.IPPROTO_TCP
    assert _nodelay_of_accepted(sock) != 0


def test_uvicorns_own_socket_does_not() -> None:
    """The reason for listening_socket: if uvicorn fixes its socket, this fails and the re-wrap can go."""
    sock = uvicorn.Config(app="forum.web.app:create_app", host="127.0.0.1", port=0).bind_socket()
    assert sock.proto == 0
    assert _nodelay_of_accepted(sock) == 0
