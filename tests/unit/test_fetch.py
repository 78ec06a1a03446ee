"""bootstrap.fetch.download against real HTTP(S) servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from bootstrap import fetch
from bootstrap.errors import StepError
from bootstrap.fetch import check_redirect, check_url, download
from bootstrap.fileio import sha256_file
from tests.support.httpserver import LoopbackServer, self_signed_cert, send_bytes, send_redirect

DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()
HALF = len(DATA) // 2


@pytest.fixture(autouse=True)
def _direct_and_quick(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy from the environment would send 127.0.0.1 traffic elsewhere.
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    # Same retry logic, shorter pauses between attempts.
    monkeypatch.setattr(fetch, "_BACKOFF_BASE_S", 0.05)


@pytest.fixture
def server(tmp_path: Path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "payload.bin").write_bytes(DATA)
    with LoopbackServer(root) as srv:
        yield srv


def get(url: str, dest: Path, **kw):
    kw.setdefault("sha256", SHA)
    kw.setdefault("progress", False)
    kw.setdefault("allow_http", True)
    return download(url, dest, **kw)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def half_then_close(req: BaseHTTPRequestHandler) -> None:
    """Promise the whole body, send half, hang up: a dropped connection."""
    req.send_response(200)
    req.send_header("Content-Length", str(len(DATA)))
    req.end_headers()
    req.wfile.write(DATA[:HALF])


# -- plain downloads ---------------------------------------------------------------------

def test_download_and_verify(server: LoopbackServer, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "deep" / "model.bin"
    result = get(server.url_for("payload.bin"), dest)
    assert result == dest
    assert dest.read_bytes() == DATA
    assert sha256_file(dest) == SHA
    assert leftovers(dest.parent) == ["model.bin"]  # no .part left
    assert server.count("/payload.bin") == 1
    assert server.requests[0].headers["Accept-Encoding"] == "identity"


def test_progress_bar_does_not_get_in_the_way(server: LoopbackServer, tmp_path: Path) -> None:
    dest = tmp_path / "dl" / "model.bin"
    get(server.url_for("payload.bin"), dest, progress=True)
    assert dest.read_bytes() == DATA


def test_matching_dest_makes_no_request(server: LoopbackServer, tmp_path: Path) -> None:
    dest = tmp_path / "dl" / "model.bin"
    dest.parent.mkdir()
    dest.write_bytes(DATA)
    assert get(server.url_for("payload.bin"), dest) == dest
    assert server.count() == 0


def test_stale_dest_is_replaced(server: LoopbackServer, tmp_path: Path) -> None:
    dest = tmp_path / "dl" / "model.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"an older version")
    get(server.url_for("payload.bin"), dest)
    assert dest.read_bytes() == DATA
    assert server.count() == 1


def test_redirect_within_allowed_scheme_is_followed(server: LoopbackServer,
                                                    tmp_path: Path) -> None:
    server.route("/old", lambda req: send_redirect(req, "/payload.bin", 301))
    dest = tmp_path / "dl" / "model.bin"
    get(server.url_for("old"), dest)
    assert dest.read_bytes() == DATA
    assert [r.path for r in server.requests] == ["/old", "/payload.bin"]


# -- resuming -------------------------------------------------------------------------------

def test_resume_after_dropped_connection(server: LoopbackServer, tmp_path: Path) -> None:
    def flaky(req: BaseHTTPRequestHandler) -> None:
        if server.count("/flaky") == 1:
            half_then_close(req)
        else:
            send_bytes(req, DATA)  # honours Range: answers 206

    server.route("/flaky", flaky)
    dest = tmp_path / "dl" / "model.bin"
    get(server.url_for("flaky"), dest)
    assert dest.read_bytes() == DATA
    first, second = server.requests
    assert first.headers.get("Range") is None
    assert second.headers["Range"] == f"bytes={HALF}-"


def test_server_ignoring_range_restarts_the_file(server: LoopbackServer,
                                                 tmp_path: Path) -> None:
    def no_ranges(req: BaseHTTPRequestHandler) -> None:
        if server.count("/norange") == 1:
            half_then_close(req)
        else:
            send_bytes(req, DATA, honor_range=False)  # a 200 with the whole body

    server.route("/norange", no_ranges)
    dest = tmp_path / "dl" / "model.bin"
    get(server.url_for("norange"), dest)
    assert dest.read_bytes() == DATA  # the 200 replaced the half, not appended to it
    assert server.requests[1].headers["Range"] == f"bytes={HALF}-"


def test_part_file_from_an_earlier_run_is_resumed(server: LoopbackServer,
                                                  tmp_path: Path) -> None:
    dest = tmp_path / "dl" / "model.bin"
    dest.parent.mkdir()
    (tmp_path / "dl" / "model.bin.part").write_bytes(DATA[:1000])
    get(server.url_for("payload.bin"), dest)
    assert dest.read_bytes() == DATA
    assert server.requests[0].headers["Range"] == "bytes=1000-"
    assert leftovers(dest.parent) == ["model.bin"]


def test_complete_part_file_is_accepted_on_416(server: LoopbackServer, tmp_path: Path) -> None:
    dest = tmp_path / "dl" / "model.bin"
    dest.parent.mkdir()
    (tmp_path / "dl" / "model.bin.part").write_bytes(DATA)
    get(server.url_for("payload.bin"), dest)
    assert dest.read_bytes() == DATA
    assert server.requests[0].headers["Range"] == f"bytes={len(DATA)}-"


def test_retries_after_a_503(server: LoopbackServer, tmp_path: Path) -> None:
    def busy_once(req: BaseHTTPRequestHandler) -> None:
        if server.count("/busy") == 1:
            req.send_response(503)
            req.send_header("Content-Length", "0")
            req.end_headers()
        else:
            send_bytes(req, DATA)

    server.route("/busy", busy_once)
    dest = tmp_path / "dl" / "model.bin"
    get(server.url_for("busy"), dest)
    assert dest.read_bytes() == DATA
    assert server.count("/busy") == 2


def test_gives_up_after_retries(server: LoopbackServer, tmp_path: Path) -> None:
    def always_busy(req: BaseHTTPRequestHandler) -> None:
        req.send_response(503)
        req.send_header("Content-Length", "0")
        req.end_headers()

    server.route("/down", always_busy)
    url = server.url_for("down")
    with pytest.raises(StepError, match="after 3 attempts") as info:
        get(url, tmp_path / "dl" / "model.bin", retries=2)
    assert url in str(info.value)
    assert "HTTP 503" in str(info.value)
    assert server.count("/down") == 3


# -- failures --------------------------------------------------------------------------------

def test_wrong_checksum_leaves_nothing(server: LoopbackServer, tmp_path: Path) -> None:
    dest = tmp_path / "dl" / "model.bin"
    url = server.url_for("payload.bin")
    with pytest.raises(StepError, match="does not match its sha256") as info:
        get(url, dest, sha256="0" * 64)
    message = str(info.value)
    assert url in message and SHA in message and "0" * 64 in message
    assert leftovers(dest.parent) == []  # neither dest nor .part


def test_not_found_fails_at_once(server: LoopbackServer, tmp_path: Path) -> None:
    url = server.url_for("missing.bin")
    with pytest.raises(StepError, match="HTTP 404") as info:
        get(url, tmp_path / "dl" / "model.bin")
    assert url in str(info.value)
    assert server.count() == 1  # a 404 is not retried
    assert leftovers(tmp_path / "dl") == []


def test_malformed_sha256_is_refused_before_any_request(server: LoopbackServer,
                                                        tmp_path: Path) -> None:
    with pytest.raises(StepError, match="64 hexadecimal digits"):
        get(server.url_for("payload.bin"), tmp_path / "dl" / "model.bin", sha256="abc")
    assert server.count() == 0


# -- stalls and deadlines ----------------------------------------------------------------

def test_stalled_body_fails_within_deadline(server: LoopbackServer, tmp_path: Path) -> None:
    def stall(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Length", str(len(DATA)))
        req.end_headers()
        req.wfile.write(DATA[:10])
        req.wfile.flush()
        server.stopping.wait(30)  # then nothing more, until the server stops

    server.route("/stall", stall)
    url = server.url_for("stall")
    started = time.monotonic()
    with pytest.raises(StepError, match="deadline of 2 s") as info:
        get(url, tmp_path / "dl" / "model.bin", deadline=2, read_timeout=1, retries=10)
    assert time.monotonic() - started < 15
    assert url in str(info.value)
    assert not (tmp_path / "dl" / "model.bin").exists()


def test_silent_server_fails_within_deadline(server: LoopbackServer, tmp_path: Path) -> None:
    server.route("/silent", lambda req: server.stopping.wait(30))  # never answers
    started = time.monotonic()
    with pytest.raises(StepError, match="deadline") as info:
        get(server.url_for("silent"), tmp_path / "dl" / "model.bin", deadline=1.5,
            read_timeout=0.5, retries=100)
    assert time.monotonic() - started < 15
    assert "Timeout" in str(info.value)  # the last attempt's error is in the details


def test_trickling_server_fails_within_deadline(server: LoopbackServer, tmp_path: Path) -> None:
    # One byte every 0.1 s never trips a read timeout; only the deadline stops it.
    def trickle(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Length", str(len(DATA)))
        req.end_headers()
        for i in range(len(DATA)):
            req.wfile.write(DATA[i:i + 1])
            req.wfile.flush()
            if server.stopping.wait(0.1):
                return

    server.route("/trickle", trickle)
    started = time.monotonic()
    with pytest.raises(StepError, match="deadline of 1.5 s"):
        get(server.url_for("trickle"), tmp_path / "dl" / "model.bin", deadline=1.5,
            read_timeout=1)
    assert time.monotonic() - started < 15
    # What arrived is kept for the next run to resume.
    assert 0 < (tmp_path / "dl" / "model.bin.part").stat().st_size < len(DATA)


# -- scheme policy ----------------------------------------------------------------------------

def test_plain_http_is_refused_before_any_request(server: LoopbackServer,
                                                  tmp_path: Path) -> None:
    url = server.url_for("payload.bin")
    with pytest.raises(StepError, match="plain http") as info:
        download(url, tmp_path / "dl" / "model.bin", sha256=SHA, progress=False)
    assert url in str(info.value)
    assert "https://" in str(info.value)  # the hint says what to use
    assert server.count() == 0
    assert leftovers(tmp_path / "dl") == []


@pytest.mark.parametrize("url", ["http://example.com/model.bin", "http://10.0.0.1/x"])
def test_allow_http_is_for_loopback_only(url: str, tmp_path: Path) -> None:
    with pytest.raises(StepError, match="plain http"):
        get(url, tmp_path / "dl" / "model.bin")


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "example.com/x",
                                 "https:///nohost"])
def test_other_schemes_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(StepError) as info:
        get(url, tmp_path / "dl" / "model.bin")
    assert url in str(info.value)


def test_check_url_policy() -> None:
    check_url("https://example.com/x")
    check_url("http://127.0.0.1:8000/x", allow_http=True)
    check_url("http://localhost/x", allow_http=True)
    check_url("http://[::1]/x", allow_http=True)
    with pytest.raises(StepError):
        check_url("http://127.0.0.1:8000/x")


def test_check_redirect_never_downgrades() -> None:
    check_redirect("https://a.example/x", "https://b.example/y")
    check_redirect("http://127.0.0.1:1/x", "http://127.0.0.1:2/y", allow_http=True)
    check_redirect("http://127.0.0.1:1/x", "https://b.example/y", allow_http=True)
    for allow in (False, True):
        with pytest.raises(StepError, match="from https to plain http") as info:
            check_redirect("https://a.example/x", "http://127.0.0.1/y", allow_http=allow)
        assert "https://a.example/x -> http://127.0.0.1/y" in str(info.value)
    with pytest.raises(StepError, match="refusing redirect"):
        check_redirect("http://127.0.0.1/x", "http://example.com/y", allow_http=True)
    with pytest.raises(StepError, match="refusing redirect"):
        check_redirect("https://a.example/x", "file:///etc/passwd")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pair = self_signed_cert(tmp_path_factory.mktemp("tls"))
    if pair is None:
        pytest.skip("openssl is not available to make a test certificate")
    return pair


def tls_session(cert: tuple[Path, Path]):
    import requests

    sess = requests.Session()
    sess.verify = str(cert[0])
    sess.trust_env = False  # else REQUESTS_CA_BUNDLE would override verify
    return sess


def test_https_download(cert: tuple[Path, Path], tmp_path: Path) -> None:
    with LoopbackServer(routes={"/f": lambda req: send_bytes(req, DATA)}, tls=cert) as tls, \
            tls_session(cert) as sess:
        assert tls.url.startswith("https://")
        dest = tmp_path / "dl" / "model.bin"
        download(tls.url_for("f"), dest, sha256=SHA, progress=False, session=sess)
    assert dest.read_bytes() == DATA


def test_untrusted_certificate_fails_at_once(cert: tuple[Path, Path], tmp_path: Path) -> None:
    import requests

    with LoopbackServer(routes={"/f": lambda req: send_bytes(req, DATA)}, tls=cert) as tls, \
            requests.Session() as sess:
        sess.trust_env = False  # only the default CAs, which do not know our cert
        url = tls.url_for("f")
        with pytest.raises(StepError, match="TLS certificate check failed") as info:
            download(url, tmp_path / "dl" / "model.bin", sha256=SHA, progress=False,
                     session=sess)
    assert url in str(info.value)
    assert "certificate" in str(info.value).split("hint:")[1]


@pytest.mark.parametrize("allow_http", [False, True])
def test_redirect_to_http_is_refused(server: LoopbackServer, cert: tuple[Path, Path],
                                     tmp_path: Path, allow_http: bool) -> None:
    plain = server.url_for("payload.bin")
    with LoopbackServer(routes={"/f": lambda req: send_redirect(req, plain)}, tls=cert) as tls, \
            tls_session(cert) as sess:
        with pytest.raises(StepError, match="from https to plain http") as info:
            download(tls.url_for("f"), tmp_path / "dl" / "model.bin", sha256=SHA, progress=False,
                     session=sess, allow_http=allow_http)
        assert tls.count("/f") == 1
    assert plain in str(info.value)
    assert server.count() == 0  # the http address was never contacted
    assert leftovers(tmp_path / "dl") == []


# -- size caps and what a failure leaves ------------------------------------------------------

def test_a_size_cap_stops_an_endless_body_and_leaves_nothing(server: LoopbackServer,
                                                             tmp_path: Path) -> None:
    def endless(req: BaseHTTPRequestHandler) -> None:
        """A body that never ends and announces no size."""
        req.send_response(200)
        req.end_headers()
        while not server.stopping.is_set():
            try:
                req.wfile.write(b"x" * 65536)
            except OSError:
                return  # the client hung up

    server.route("/endless", endless)
    dest = tmp_path / "dl" / "model.bin"
    with pytest.raises(StepError, match="larger than its limit of 1000000 bytes"):
        get(server.url_for("endless"), dest, max_bytes=1_000_000)
    assert leftovers(dest.parent) == []


def test_an_announced_size_over_the_cap_is_refused_before_writing(server: LoopbackServer,
                                                                  tmp_path: Path) -> None:
    dest = tmp_path / "dl" / "model.bin"
    with pytest.raises(StepError, match=f"limit of 1000 bytes \\({len(DATA)} bytes\\)"):
        get(server.url_for("payload.bin"), dest, max_bytes=1000)
    assert leftovers(dest.parent) == []
    assert get(server.url_for("payload.bin"), dest, max_bytes=len(DATA)).read_bytes() == DATA


def test_a_failed_body_of_unknown_size_leaves_no_part(server: LoopbackServer,
                                                      tmp_path: Path) -> None:
    def trickle_unsized(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.end_headers()
        for i in range(len(DATA)):
            req.wfile.write(DATA[i:i + 1])
            req.wfile.flush()
            if server.stopping.wait(0.05):
                return

    server.route("/unsized", trickle_unsized)
    dest = tmp_path / "dl" / "model.bin"
    with pytest.raises(StepError, match="deadline of 1 s"):
        get(server.url_for("unsized"), dest, deadline=1, read_timeout=1)
    assert leftovers(dest.parent) == []
