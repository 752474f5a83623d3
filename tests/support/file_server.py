"""A local HTTP server (127.0.0.1, a free port) for download tests: serves files by name with HTTP
Range, counts requests, and can drop the link part-way through the first request for a name."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class FileServer:
    def __init__(self, files: dict[str, Path], cut_first: dict[str, int] | None = None) -> None:
        self.files, self.cut_first = files, dict(cut_first or {})
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append((name, self.headers.get("Range")))
                if name not in server.files:
                    self.send_error(404)
                    return
                body = server.files[name].read_bytes()
                match = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
                start = int(match.group(1)) if match else 0
                self.send_response(206 if match else 200)
                if match:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                cut = server.cut_first.pop(name, None)
                if cut is not None:
                    self.wfile.write(body[start:cut])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the link drops mid-download
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def serving(files: dict[str, Path], cut_first: dict[str, int] | None = None) -> Iterator[FileServer]:
    server = FileServer(files, cut_first)
    try:
        yield server
    finally:
        server.close()
