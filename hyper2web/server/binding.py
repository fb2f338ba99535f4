"""Binding the listening sockets, before the event loop starts.

``Bindings.bind`` runs before curio does, so a port in use or an unknown host is one clear
``ServerError`` (``PortInUse``) before anything starts. ``localhost`` is every address it
resolves to (127.0.0.1 and ::1), all on one port. ``Bindings`` is a part of ``Server``.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import cast

from ..exceptions import PortInUse, ServerError

log = logging.getLogger("hyper2web.server")

BIND_ATTEMPTS = 10  # with port 0: new picks when the first pick is taken on another address


class Bindings:
    """The listening sockets of ``Server``."""

    host: str
    port: int
    reuse_port: bool
    sockets: list[socket.socket]
    _listen: bool

    def bind(self, listen: bool = True) -> list[tuple[str, int]]:
        """Bind every address ``host`` resolves to (``localhost``: 127.0.0.1 and ::1).

        With port 0 the first socket picks a free port and the others take the same one
        (a new pick when that port is taken on another address). Returns the bound
        ``(address, port)`` pairs. ``listen=False`` only reserves the port (and reports a
        port in use): the parent of workers does that, and each worker calls ``rebind``.
        """
        self._listen = listen
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise ServerError(f"cannot resolve host {self.host!r}: {exc.strerror}") from None
        addresses: list[tuple[int, str]] = []
        for family, _, _, _, sockaddr in infos:
            host = cast(str, sockaddr[0])  # an IPv4 or IPv6 address: a str
            if (family, host) not in addresses:
                addresses.append((family, host))
        for _ in range(BIND_ATTEMPTS if self.port == 0 else 1):
            if self._bind_all(addresses):
                break
        if not self.sockets:
            raise ServerError(f"no address to listen on for host {self.host!r}")
        self.port = self.sockets[0].getsockname()[1]
        return [(s.getsockname()[0], s.getsockname()[1]) for s in self.sockets]

    def _bind_all(self, addresses: list[tuple[int, str]]) -> bool:
        """One try at binding every address to one port; False means try another port."""
        port = self.port
        for family, address in addresses:
            try:
                sock = self._bind_one(family, address, port)
            except OSError as exc:
                if self.sockets and exc.errno != errno.EADDRINUSE:
                    # A second address family failing (e.g. IPv6 off) must not stop the first.
                    log.debug("not listening on %s: %s", address, exc)
                    continue
                if self.sockets and self.port == 0:
                    # The port picked on the first address is taken on this one.
                    self.close_sockets()
                    return False
                # A port in use on any address is an error: a browser resolving the name to
                # that address would reach whatever server holds it.
                self.close_sockets()
                kind = PortInUse if exc.errno == errno.EADDRINUSE else ServerError
                raise kind(self._bind_error(exc, address, port)) from None
            self.sockets.append(sock)
            port = sock.getsockname()[1]
        return True

    def _bind_one(self, family: int, address: str, port: int) -> socket.socket:
        if self.reuse_port and not self._listen and port != 0:
            # Reserving the port for workers: with SO_REUSEPORT alone, another server that
            # also sets it would share the port silently. A plain bind first says "in use".
            _bound(family, address, port, reuse_port=False).close()
        sock = _bound(family, address, port, reuse_port=self.reuse_port)
        if self._listen:
            try:
                sock.listen(256)
            except OSError:
                sock.close()
                raise
        return sock

    def _bind_error(self, exc: OSError, address: str, port: int) -> str:
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} is already in use on {self.host}"
        if exc.errno == errno.EACCES:
            return f"no permission to listen on port {port} (ports below 1024 need root)"
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"address {address} is not available on this machine"
        return f"cannot listen on {address}:{port}: {exc.strerror or exc}"

    def close_sockets(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets = []


def _bound(family: int, address: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to ``(address, port)``; IPv6 sockets take IPv6 only."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    return sock
