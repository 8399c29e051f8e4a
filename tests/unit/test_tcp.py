"""storage.tcp: the congestion control of a socket, of a listener's accepted connections and of
aiohttp's client sockets (real sockets on 127.0.0.1)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from storage import tcp

LINUX_ONLY = pytest.mark.skipif(
    not hasattr(socket, "TCP_CONGESTION"), reason="TCP_CONGESTION is Linux's"
)
pytestmark = LINUX_ONLY
_SYSTEM_SETTING = Path("/proc/sys/net/ipv4/tcp_congestion_control")
SYSTEM_DEFAULT = _SYSTEM_SETTING.read_text().strip() if _SYSTEM_SETTING.exists() else ""


def test_a_socket_takes_the_algorithm_it_is_given() -> None:
    with socket.socket() as sock:
        assert tcp.set_congestion(sock, "reno")
        assert tcp.congestion_of(sock) == "reno"


def test_no_algorithm_keeps_the_system_default() -> None:
    with socket.socket() as sock:
        assert tcp.set_congestion(sock, "")
        assert tcp.congestion_of(sock) == SYSTEM_DEFAULT


def test_an_unknown_algorithm_is_refused_once_logged_and_the_default_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="storage.tcp"):
        for _ in range(2):
            with socket.socket() as sock:
                assert not tcp.set_congestion(sock, "no-such-cc")
                assert tcp.congestion_of(sock) == SYSTEM_DEFAULT
    assert sum("no-such-cc" in r.getMessage() for r in caplog.records) == 1


def test_connections_a_listener_accepts_use_its_algorithm() -> None:
    [listener] = tcp.listening_sockets("127.0.0.1", 0, "reno", backlog=8)
    with listener:
        listener.setblocking(True)
        with socket.create_connection(listener.getsockname()) as client:
            accepted, _ = listener.accept()
            with accepted:
                assert tcp.congestion_of(accepted) == "reno"
                assert tcp.congestion_of(client) == SYSTEM_DEFAULT


def test_the_socket_factory_makes_sockets_of_its_algorithm() -> None:
    info = socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)[0]
    with tcp.SocketFactory("reno")(info) as sock:
        assert tcp.congestion_of(sock) == "reno"


def test_a_name_gets_a_listener_per_address_it_resolves_to() -> None:
    addresses = {i[4][0] for i in socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)}
    sockets = tcp.listening_sockets("localhost", 0, "", backlog=8)
    try:
        assert {s.getsockname()[0] for s in sockets} == addresses
    finally:
        for s in sockets:
            s.close()
