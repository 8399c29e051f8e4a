"""TCP congestion control per socket (Linux ``TCP_CONGESTION``).

The connections between gateways and nodes carry every shard byte. On this project's test
machines the system default is BBR, whose pacing held the node-to-gateway streams of a GET to
~1,350 MB/s where CUBIC (Linux's own default) moved ~2,250 MB/s over the same loopback links,
with 2-4x fewer retransmitted segments (docs/benchmarks.md, "Congestion control between
gateways and nodes"). So a node's listener and a gateway's connections to nodes use the
``node_tcp_congestion`` setting (CUBIC unless set), while the S3 listener keeps the system's
choice unless ``s3_tcp_congestion`` says otherwise: the city's clients are on 10 and 100 Mbps
links, where BBR may well be the better choice.

Children accepted from a listening socket inherit its algorithm, so setting it on the
listener covers every connection it accepts.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

log = logging.getLogger(__name__)

_warned: set[str] = set()


def set_congestion(sock: socket.socket, algorithm: str) -> bool:
    """Use ``algorithm`` for ``sock``; "" keeps the system's default. False if the kernel
    refused it (not loaded, not allowed to this user, not Linux): the socket then keeps the
    default, and the first refusal of each algorithm is logged."""
    if not algorithm:
        return True
    option = getattr(socket, "TCP_CONGESTION", None)
    try:
        if option is None:
            raise OSError("TCP_CONGESTION is not supported on this platform")
        sock.setsockopt(socket.IPPROTO_TCP, option, algorithm.encode("ascii"))
    except OSError as exc:
        if algorithm not in _warned:
            _warned.add(algorithm)
            log.warning(
                "TCP congestion control %r unavailable (%s): system default", algorithm, exc
            )
        return False
    return True


def congestion_of(sock: socket.socket) -> str:
    """The algorithm ``sock`` uses ("" where it cannot be read)."""
    option = getattr(socket, "TCP_CONGESTION", None)
    if option is None:
        return ""
    raw: bytes = sock.getsockopt(socket.IPPROTO_TCP, option, 16)
    return raw.split(b"\0", 1)[0].decode("ascii")


class SocketFactory:
    """For aiohttp's ``TCPConnector(socket_factory=...)``: sockets that use ``algorithm``."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm

    def __call__(self, addr_info: tuple[Any, ...]) -> socket.socket:
        family, kind, proto = addr_info[0], addr_info[1], addr_info[2]
        sock = socket.socket(family, kind, proto)
        set_congestion(sock, self.algorithm)
        return sock


def listening_sockets(host: str, port: int, algorithm: str, backlog: int) -> list[socket.socket]:
    """Bound, listening TCP sockets for ``host:port``, one per address it resolves to (as
    asyncio's ``create_server`` binds them: address reuse on, IPv6 sockets IPv6 only), whose
    accepted connections use ``algorithm``."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            set_congestion(sock, algorithm)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets
