"""A small TCP proxy for fault tests, between agents and the broker: it can cut the link, stall it,
slow it to a WiFi-like bandwidth, or reset connections in the middle of a frame.

    proxy = TcpProxy(("127.0.0.1", broker.port)).start()   # agents connect to proxy.port
    proxy.throttle(20_000)       # bytes/s each way, per connection
    proxy.reset_after(8_000)     # RST each connection once 8 kB more have gone upstream (mid-frame)
    proxy.stall(3.0)             # stop moving bytes for 3 s (connections stay open)
    proxy.cut()                  # close every connection and refuse new ones ... proxy.restore()
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time


class _Link:
    def __init__(self, proxy: TcpProxy, client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = socket.create_connection(proxy.target, timeout=5)
        self.upstream.settimeout(None)
        self.closed = False
        self.sent_up = 0
        self.reset_at: int | None = None

    def run(self) -> None:
        socks = [self.client, self.upstream]
        try:
            while not self.closed:
                if self.proxy.stalled_until > time.monotonic():
                    time.sleep(0.02)  # bytes wait in the kernel buffers, as on a link that stops
                    continue
                readable, _, _ = select.select(socks, [], [], 0.1)
                for sock in readable:
                    chunk = sock.recv(4096 if self.proxy.rate else 65536)
                    if not chunk:
                        return
                    upward = sock is self.client
                    if upward and self.proxy.reset_bytes is not None and self.reset_at is None:
                        self.reset_at = self.sent_up + self.proxy.reset_bytes
                    if upward and self.reset_at is not None and self.sent_up + len(chunk) >= self.reset_at:
                        keep = self.reset_at - self.sent_up
                        self.upstream.sendall(chunk[:keep])  # part of the frame, then the link dies
                        self.proxy.resets += 1
                        self.proxy.reset_bytes = None
                        return self.abort()
                    (self.upstream if upward else self.client).sendall(chunk)
                    if upward:
                        self.sent_up += len(chunk)
                        self.proxy.bytes_up += len(chunk)
                    if self.proxy.rate:
                        time.sleep(len(chunk) / self.proxy.rate)
        except OSError:
            pass
        finally:
            self.close()

    def abort(self) -> None:
        """Close both sides with RST (SO_LINGER 0), as a dropped radio link looks to the far end."""
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.close()


class TcpProxy:
    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.target = target
        self.listener = socket.create_server((host, 0))
        self.port = self.listener.getsockname()[1]
        self.rate: float | None = None
        self.stalled_until = 0.0
        self.refusing = False
        self.reset_bytes: int | None = None
        self.resets = 0
        self.cuts = 0
        self.bytes_up = 0
        self.links: list[_Link] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> TcpProxy:
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()
        return self

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.refusing:
                with contextlib.suppress(OSError):
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    client.close()
                continue
            try:
                link = _Link(self, client)
            except OSError:
                client.close()
                continue
            with self._lock:
                self.links = [existing for existing in self.links if not existing.closed] + [link]
            threading.Thread(target=link.run, name="tcp-proxy-link", daemon=True).start()

    # --- faults
    def throttle(self, bytes_per_s: float | None) -> None:
        self.rate = bytes_per_s

    def stall(self, seconds: float) -> None:
        self.stalled_until = time.monotonic() + seconds

    def reset_after(self, upstream_bytes: int) -> None:
        """The next connection to send ``upstream_bytes`` more bytes is reset at that point."""
        self.reset_bytes = upstream_bytes

    def cut(self) -> None:
        """Drop every connection (RST) and refuse new ones until ``restore``."""
        self.refusing = True
        self.cuts += 1
        with self._lock:
            links = list(self.links)
        for link in links:
            link.abort()

    def restore(self) -> None:
        self.refusing = False
        self.stalled_until = 0.0
        self.rate = None

    def stop(self) -> None:
        self._stop.set()
        self.cut()
        self.listener.close()
