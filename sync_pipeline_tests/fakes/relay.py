"""A TCP relay on 127.0.0.1 in front of a real server (RabbitMQ): `close()` makes that server unreachable through it,
as a broker that went down (new connections refused, open ones cut), and `open()` brings it back on the same port."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

ACCEPT_POLL = 0.2  # how often the accepting thread looks whether it should stop


class TcpRelay:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0  # chosen by the first open(), kept by the next ones
        self._stop = threading.Event()
        self._acceptor: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()

    def open(self) -> None:
        """Accept connections and forward each to the target."""
        # create_server sets SO_REUSEADDR: the port is bound again while cut connections are in TIME_WAIT.
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(ACCEPT_POLL)
        self.port = listener.getsockname()[1]
        self._stop.clear()
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def close(self) -> None:
        """Stop listening (a connection is refused at once, as by a host whose broker is down) and cut every
        forwarded connection (its peers see the connection reset, as when the broker's process dies)."""
        self._stop.set()
        if self._acceptor is not None:
            self._acceptor.join()
            self._acceptor = None
        with self._lock:
            for sock in self._sockets:
                _cut(sock)
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while not self._stop.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                self._forward(client)

    def _forward(self, client: socket.socket) -> None:
        client.settimeout(None)  # accepted sockets inherit the listener's timeout
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _cut(client)
            return
        upstream.settimeout(None)
        with self._lock:
            self._sockets.update((client, upstream))
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy one direction until either side ends, then end both (AMQP has no half-closed connections)."""
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.difference_update((source, sink))
            _cut(source)
            _cut(sink)


def _cut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@contextmanager
def tcp_relay(host: str, port: int) -> Iterator[TcpRelay]:
    """A relay to host:port, open; closed (its connections cut) on exit."""
    relay = TcpRelay((host, port))
    relay.open()
    try:
        yield relay
    finally:
        relay.close()
