"""A real HTTP(S) server on 127.0.0.1 for tests: serve a folder, or custom handlers.

    from tests.support.httpserver import LoopbackServer, send_bytes

    def half_then_close(req):                 # req: the BaseHTTPRequestHandler
        req.send_response(200)
        req.send_header("Content-Length", "100")
        req.end_headers()
        req.wfile.write(b"x" * 50)           # returning closes the connection

    with LoopbackServer(root=tmp_path, routes={"/drop": half_then_close}) as srv:
        srv.url                               # "http://127.0.0.1:PORT"
        srv.url_for("/file.bin")              # a file under root, with Range support
        srv.requests                          # every request seen: method, path, headers
        srv.count("/drop")                    # how many requests hit one path

The server listens on port 0 (the kernel picks a free port) and runs in a
daemon thread; each connection gets its own thread, and every response closes
its connection (HTTP/1.0), so a handler never has to get keep-alive right.
Handlers that wait should use ``srv.stopping.wait(seconds)`` instead of
``time.sleep`` so that leaving the ``with`` block ends them at once.

TLS: pass ``tls=(certfile, keyfile)``; :func:`self_signed_cert` makes a pair
for 127.0.0.1 with the ``openssl`` command (None when it is missing). Clients
must trust the cert (requests: ``session.verify = certfile`` and
``session.trust_env = False``, since REQUESTS_CA_BUNDLE in the environment
would otherwise override ``verify``).
"""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import threading
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import unquote, urlsplit

__all__ = [
    "Handler",
    "LoopbackServer",
    "RecordedRequest",
    "parse_range",
    "self_signed_cert",
    "send_bytes",
    "send_redirect",
]

#: a route handler gets the request handler object and writes the whole answer
Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it; ``headers`` is case-insensitive."""

    method: str
    path: str  # without the query string
    query: str
    headers: Message


def parse_range(value: str | None, size: int) -> tuple[int, int] | None | str:
    """Parse a single-range ``Range`` header against a body of ``size`` bytes.

    Returns (start, end_inclusive), None when there is no usable Range header
    (serve the whole body), or the string "unsatisfiable" (answer 416).
    """
    if not value:
        return None
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value)
    if not m or (not m.group(1) and not m.group(2)):
        return None  # multi-range or garbage: RFC 9110 lets us ignore it
    if m.group(1):
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
    else:  # suffix range: the last N bytes
        start, end = max(size - int(m.group(2)), 0), size - 1
    if start >= size or start > end:
        return "unsatisfiable"
    return start, min(end, size - 1)


def send_bytes(req: BaseHTTPRequestHandler, data: bytes, *, honor_range: bool = True,
               content_type: str = "application/octet-stream",
               headers: Mapping[str, str] | None = None) -> None:
    """Answer with ``data``: 200, or 206/416 for a Range request when ``honor_range``."""
    status, body = 200, data
    extra = dict(headers or {})
    if honor_range:
        extra.setdefault("Accept-Ranges", "bytes")
        rng = parse_range(req.headers.get("Range"), len(data))
        if rng == "unsatisfiable":
            status, body = 416, b""
            extra["Content-Range"] = f"bytes */{len(data)}"
        elif isinstance(rng, tuple):
            start, end = rng
            status, body = 206, data[start:end + 1]
            extra["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    req.send_response(status)
    req.send_header("Content-Type", content_type)
    req.send_header("Content-Length", str(len(body)))
    for name, value in extra.items():
        req.send_header(name, value)
    req.end_headers()
    if req.command != "HEAD":
        req.wfile.write(body)


def send_redirect(req: BaseHTTPRequestHandler, location: str, status: int = 302) -> None:
    """Answer with a redirect to ``location`` (absolute or relative)."""
    req.send_response(status)
    req.send_header("Location", location)
    req.send_header("Content-Length", "0")
    req.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: LoopbackServer


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean; the requests are recorded instead

    def _dispatch(self) -> None:
        owner = self.server.owner
        parts = urlsplit(self.path)
        owner._record(RecordedRequest(self.command, parts.path, parts.query, self.headers))
        handler = owner.routes.get(parts.path)
        try:
            if handler is not None:
                handler(self)
            elif owner.root is not None:
                self._serve_file(owner.root, parts.path)
            else:
                send_bytes(self, b"not found\n", honor_range=False, content_type="text/plain")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away, which several tests do on purpose

    def _serve_file(self, root: Path, path: str) -> None:
        target = (root / unquote(path).lstrip("/")).resolve()
        if not target.is_file() or not target.is_relative_to(root.resolve()):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        send_bytes(self, target.read_bytes())

    do_GET = _dispatch
    do_HEAD = _dispatch
    do_POST = _dispatch


class LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1:0 in a background thread; a context manager.

    ``root``: a folder whose files are served (with Range support) for paths
    that have no route. ``routes``: exact paths (no query) mapped to handlers;
    more can be added with :meth:`route` while it runs. ``tls``: (certfile,
    keyfile) to serve https instead.
    """

    def __init__(self, root: str | Path | None = None, *,
                 routes: Mapping[str, Handler] | None = None,
                 tls: tuple[str | Path, str | Path] | None = None) -> None:
        self.root = Path(root) if root is not None else None
        self.routes: dict[str, Handler] = dict(routes or {})
        self.tls = tls
        #: set when the server stops; waiting handlers should wait on it
        self.stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> LoopbackServer:
        if self._httpd is not None:
            return self
        httpd = _Server(("127.0.0.1", 0), _RequestHandler)
        httpd.owner = self
        if self.tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"loopback-http-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self.stopping.set()  # wake handlers that wait, before joining the loop
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:43121``."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def url_for(self, path: str) -> str:
        return self.url + "/" + path.lstrip("/")

    # -- routes and records ----------------------------------------------------------
    def route(self, path: str, handler: Handler) -> None:
        self.routes["/" + path.lstrip("/")] = handler

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def count(self, path: str | None = None) -> int:
        """How many requests arrived (for ``path`` only, when given)."""
        return sum(1 for r in self.requests if path is None or r.path == path)


def self_signed_cert(folder: str | Path) -> tuple[Path, Path] | None:
    """Write cert.pem and key.pem for 127.0.0.1 into ``folder``; None without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    folder = Path(folder)
    cert, key = folder / "cert.pem", folder / "key.pem"
    result = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    if result.returncode != 0:
        return None
    return cert, key
