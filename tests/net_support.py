"""A TCP relay for the tests: between a process and a server, to cut the link or to cut the stream up."""

import contextlib
import itertools
import socket
import threading
import time

from tests.mqtt_support import free_port


class Relay:
    """Relays TCP connections to `host:port` from its own port; it can be cut (connections dropped, new ones
    refused) and restored.

    With `pieces`, what the server sends reaches the client in pieces of those sizes, in turn: what a WiFi link
    or a busy router does to a stream (a packet cut after its first byte, inside its length, anywhere in its
    payload, several packets glued together).
    """

    def __init__(self, host: str, port: int, *, pieces: tuple[int, ...] | None = None):
        self.target = (host, port)
        self.port = free_port()
        self.pieces = pieces
        self.sockets: list[socket.socket] = []
        self.listener = None
        self.lock = threading.Lock()

    def restore(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        with self.lock:
            self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self):
        with self.lock:
            listener, self.listener = self.listener, None
            dropped, self.sockets = self.sockets, []
        if listener is not None:
            # Closing alone would not do: an accept() waiting in another thread keeps the socket listening until
            # it returns, so the next connection would still get through. Shutting it down wakes that accept().
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in dropped:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self.lock:
                relayed = self.listener is listener  # not cut while the server was being reached
                if relayed:
                    self.sockets += [client, server]
            if not relayed:
                client.close()
                server.close()
                return
            threading.Thread(target=self._pump, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, self.pieces), daemon=True).start()

    @staticmethod
    def _pump(source, sink, pieces):
        sizes = itertools.cycle(pieces or [65536])
        if pieces:
            sink.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each piece its own segment
        try:
            while data := source.recv(65536):
                while data:
                    size = next(sizes)
                    sink.sendall(data[:size])
                    data = data[size:]
                    if pieces and size == 1:
                        time.sleep(0.0005)  # let the reader find the stream cut here
        except OSError:
            pass
        finally:
            # Shut down before closing: the pump of the other direction waits in recv() on one of these, and a
            # close() alone would neither wake it nor tell the far end (PostgreSQL would keep the session open).
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()
