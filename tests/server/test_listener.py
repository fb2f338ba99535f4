"""Binding: every address of ``localhost`` on one port, or one clear error."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Any

import pytest

from hyper2web.exceptions import ServerError
from hyper2web.server.listener import Server
from hyper2web.server.tls import make_ssl_context

needs_ipv6 = pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")


def _ipv6_loopback_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


async def _no_handler(request: Any, response: Any) -> None:  # pragma: no cover
    raise AssertionError("not called")


def _server(cert_pair: tuple[Path, Path], port: int) -> Server:
    return Server(_no_handler, make_ssl_context(*cert_pair), "localhost", port)


def _localhost_both_ways(monkeypatch: pytest.MonkeyPatch, ipv6_first: bool) -> None:
    """Make ``localhost`` resolve to ::1 and 127.0.0.1 in a known order."""
    real = socket.getaddrinfo

    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host != "localhost":
            return real(host, port, *args, **kwargs)
        v6 = (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port or 0, 0, 0))
        v4 = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port or 0))
        return [v6, v4] if ipv6_first else [v4, v6]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@needs_ipv6
@pytest.mark.parametrize("ipv6_first", [True, False])
def test_port_in_use_on_one_address_is_an_error(cert_pair: tuple[Path, Path],
                                                monkeypatch: pytest.MonkeyPatch,
                                                ipv6_first: bool) -> None:
    if not _ipv6_loopback_works():
        pytest.skip("IPv6 loopback is off")
    _localhost_both_ways(monkeypatch, ipv6_first)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = _server(cert_pair, port)
        with pytest.raises(ServerError, match=f"port {port} is already in use"):
            server.bind()
        assert server.sockets == []


@needs_ipv6
def test_port_zero_binds_every_address_on_one_port(cert_pair: tuple[Path, Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if not _ipv6_loopback_works():
        pytest.skip("IPv6 loopback is off")
    _localhost_both_ways(monkeypatch, ipv6_first=False)
    server = _server(cert_pair, 0)
    try:
        bound = server.bind()
        assert sorted(address for address, _ in bound) == ["127.0.0.1", "::1"]
        assert {port for _, port in bound} == {server.port}
        assert server.port != 0
    finally:
        server.close_sockets()


@needs_ipv6
def test_port_zero_picks_again_when_the_pick_is_taken_elsewhere(
        cert_pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    if not _ipv6_loopback_works():
        pytest.skip("IPv6 loopback is off")
    _localhost_both_ways(monkeypatch, ipv6_first=False)
    real_bind_one = Server._bind_one
    calls: list[tuple[str, int]] = []

    def bind_one(self: Server, family: int, address: str, port: int) -> socket.socket:
        calls.append((address, port))
        if address == "::1" and len(calls) == 2:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        return real_bind_one(self, family, address, port)

    monkeypatch.setattr(Server, "_bind_one", bind_one)
    server = _server(cert_pair, 0)
    try:
        bound = server.bind()
        assert len(calls) == 4  # 127.0.0.1, ::1 (taken), then both again
        assert calls[2] == ("127.0.0.1", 0)
        assert sorted(address for address, _ in bound) == ["127.0.0.1", "::1"]
        assert {port for _, port in bound} == {server.port}
    finally:
        server.close_sockets()


def test_port_in_use_on_the_only_address(cert_pair: tuple[Path, Path]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = Server(_no_handler, make_ssl_context(*cert_pair), "127.0.0.1", port)
        with pytest.raises(ServerError, match=f"port {port} is already in use"):
            server.bind()
