"""A registry that can be switched off: a :class:`TcpProxy` between a worker and the shared registry,
so that a test can make the registry unreachable without stopping it for everyone else."""
from __future__ import annotations

import socket
import threading
from urllib.parse import urlparse

from app.process import free_port
from app.testing.stack import REGISTRY


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``; :meth:`down` refuses connections and cuts the open
    ones (as a stopped registry would), :meth:`up` serves again on the same port. Created down."""

    def __init__(self, upstream: tuple[str, int], port: int | None = None):
        self.upstream = upstream
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> "TcpProxy":
        if self._listener is None:
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self._listener = listener
            threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def down(self) -> "TcpProxy":
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def registry_upstream(url: str = REGISTRY) -> tuple[str, int]:
    """(host, port) of a registry URL.

    >>> registry_upstream("http://127.0.0.1:8081/apis/ccompat/v7")
    ('127.0.0.1', 8081)
    """
    parsed = urlparse(url)
    return parsed.hostname, parsed.port or 80


def registry_path(url: str = REGISTRY) -> str:
    """The path part of a registry URL, to put behind a proxy's address.

    >>> registry_path("http://127.0.0.1:8081/apis/ccompat/v7")
    '/apis/ccompat/v7'
    """
    return urlparse(url).path
