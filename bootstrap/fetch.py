"""Download one file over https, resumably, and verify its sha256.

This is what the ``files`` step uses to fetch weights and data sets onto a
fresh VM. The contract is small and strict:

- Only ``https://`` URLs. Plain ``http://`` is refused before any network
  I/O, and so is a redirect that would downgrade to ``http://``. The single
  exception is ``allow_http=True`` for a loopback host (127.0.0.0/8, ``::1``,
  ``localhost``), which exists so tests can run a plain local server; it never
  opens plain http to anything else.
- A ``dest`` that already holds the right bytes is kept without touching the
  network, so a second restore costs one hash.
- Bytes go to ``<dest>.part``. After a dropped connection the next attempt
  asks for the rest with ``Range: bytes=N-``; a ``206`` answer is appended,
  anything else (a ``200`` from a server that ignores ranges) starts the file
  over. A ``.part`` left by a network failure is kept so a later call resumes
  only when the server announced the size and the ``.part`` is within it; one
  of unknown size, over ``max_bytes``, cut by a write error (a full disk) or
  whose checksum is wrong is deleted, so nothing fills the disk.
- ``max_bytes`` caps the size: an announced size over it is refused before
  any byte is written, a body that sends more is stopped.
- Only a file whose sha256 matches is moved to ``dest`` (an atomic rename), so
  ``dest`` is either absent, the old file, or the verified new one.
- Connect and read timeouts bound each network wait; a wall-clock deadline,
  checked between chunks and before each retry, bounds the whole call, so a
  server that trickles bytes cannot hold a restore forever.

``requests`` and ``tqdm`` are imported inside :func:`download`, so importing
this module stays cheap.
"""

from __future__ import annotations

import ipaddress
import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from .errors import StepError
from .fileio import sha256_file  # the one file hasher

__all__ = ["DEFAULT_DEADLINE_S", "check_redirect", "check_url", "download", "is_loopback"]

#: wall-clock limit of one download() call when ``deadline`` is None
DEFAULT_DEADLINE_S = 3600.0

# Large enough to keep syscalls cheap, small enough that the deadline is
# checked often when a server trickles.
_CHUNK = 256 * 1024
_MAX_REDIRECTS = 10
# Backoff between retries: base * 2**(n-1) seconds, capped; never past the deadline.
_BACKOFF_BASE_S = 0.5
_BACKOFF_MAX_S = 10.0
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
# Answers that say "try again later" rather than "this will never work".
_RETRY_CODES = frozenset({408, 425, 429, 500, 502, 503, 504})
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE_RE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


class _Retry(Exception):
    """An attempt failed in a way another attempt may fix (internal)."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        #: seconds the server asked us to wait (Retry-After), if any
        self.wait = wait


class _DiskError(Exception):
    """Writing the .part file failed; not worth a network retry (internal)."""


class _Counter:
    """Bytes one attempt received, readable even after the attempt raised."""

    received = 0


class _Body:
    """What the server said of the whole body across attempts (internal)."""

    #: the body's full size as announced (Content-Length or Content-Range); None: unknown
    total: int | None = None


class _TooBig(Exception):
    """The body is larger than ``max_bytes`` (internal)."""

    def __init__(self, size: int | None) -> None:
        super().__init__(size)
        self.size = size


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` is this machine: ``localhost`` or a loopback address (not a name
    that merely starts like one, such as ``127.0.0.1.example.org``)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, allow_http: bool = False) -> None:
    """Raise StepError unless ``url`` may be fetched under the scheme policy.

    The policy: https always; plain http only with ``allow_http`` and only to a
    loopback host (local test servers); no other scheme.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https" and parts.hostname:
        return
    if scheme == "http" and parts.hostname:
        if allow_http and is_loopback(parts.hostname):
            return
        raise StepError(
            "refusing to download over plain http",
            where=url,
            hint="use the https:// address of this file; plain http can be altered in transit",
        )
    if scheme in ("http", "https"):
        raise StepError("URL has no host", where=url, hint="write a full https://host/path URL")
    raise StepError(
        f"unsupported URL scheme {parts.scheme + ':' if parts.scheme else '(none)'}",
        where=url,
        hint="only https:// URLs can be downloaded; copy local files from the store instead",
    )


def check_redirect(from_url: str, to_url: str, *, allow_http: bool = False) -> None:
    """Raise StepError unless a redirect from ``from_url`` to ``to_url`` is allowed.

    The target must pass :func:`check_url`, and a redirect may never go from
    https down to http, not even to a loopback host with ``allow_http``.
    """
    src = urlsplit(from_url).scheme.lower()
    dst = urlsplit(to_url).scheme.lower()
    if src == "https" and dst == "http":
        raise StepError(
            "refusing a redirect from https to plain http",
            where=f"{from_url} -> {to_url}",
            hint="the server sends this download to an insecure address; "
                 "use a URL that stays on https (ask the host to fix the redirect)",
        )
    try:
        check_url(to_url, allow_http=allow_http)
    except StepError as exc:
        raise StepError(f"refusing redirect: {exc.what}", where=f"{from_url} -> {to_url}",
                        hint=exc.hint) from None


def _parse_content_range(value: str | None) -> tuple[int, int | None] | None:
    """``bytes a-b/total`` -> (a, total or None); None when unparseable."""
    if not value:
        return None
    m = _CONTENT_RANGE_RE.match(value)
    if not m:
        return None
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), total


def _retry_after(value: str | None) -> float | None:
    # Only the delay-seconds form; an HTTP date is rare for downloads.
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def _fail_status(url: str, status: int, reason: str) -> StepError:
    if status == 404 or status == 410:
        hint = "the file is not at this URL (any more); check the URL in the profile"
    elif status in (401, 403):
        hint = "the server refuses access; the URL may need credentials or may have expired"
    elif status == 416:
        hint = "the server refused the byte range; delete the .part file and try again"
    else:
        hint = "check the URL in a browser; the server answered with an error"
    return StepError(f"download failed: HTTP {status} {reason}".rstrip(), where=url, hint=hint)


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None,
    connect_timeout: float = 10,
    read_timeout: float = 60,
    deadline: float | None = None,
    retries: int = 3,
    progress: bool = True,
    session: Any = None,
    allow_http: bool = False,
    max_bytes: int | None = None,
) -> Path:
    """Download ``url`` to ``dest`` and verify it against ``sha256``; return ``dest``.

    ``sha256=None`` takes the file as it comes (trust on first use: the caller
    hashes and records it, and passes that digest on every later download).

    ``deadline`` is the wall-clock limit of the whole call in seconds (None:
    :data:`DEFAULT_DEADLINE_S`). ``retries`` is how many attempts in a row may
    fail without receiving a byte before giving up; an attempt that made
    progress before its connection dropped does not use one up (the deadline
    still bounds the total). ``session`` is a ``requests.Session`` to reuse
    (its ``verify``, proxies, headers); one is made when None. The body is
    saved as sent (``Accept-Encoding: identity``, no transparent decoding), so
    byte ranges and the checksum refer to the same bytes.

    ``max_bytes`` caps the file's size: a server that announces more, or sends
    more, is refused.

    Raises StepError naming the URL on a refused URL or redirect, an HTTP
    error, exhausted retries, the deadline, a body over ``max_bytes``, or a
    checksum mismatch. The ``.part`` is kept for a later call to resume only
    when the server announced the body's size and the ``.part`` is within it
    (and within ``max_bytes``); a body of unknown size that failed, one over
    the cap, a write error (a full disk) or a wrong checksum leave none.
    """
    expected = None if sha256 is None else str(sha256).strip().lower()
    if expected is not None and not _SHA256_RE.match(expected):
        raise StepError(
            "sha256 must be 64 hexadecimal digits",
            where=url,
            hint=f"got {sha256!r}; compute it with `sha256sum FILE` and put it in the profile",
        )
    check_url(url, allow_http=allow_http)

    dest = Path(dest)
    if dest.is_dir():
        raise StepError("download destination is a directory", where=str(dest),
                        hint="give the full path of the file to write, including its name")
    if expected is not None and dest.is_file() and sha256_file(dest) == expected:
        return dest

    limit = DEFAULT_DEADLINE_S if deadline is None else float(deadline)
    end = time.monotonic() + limit
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StepError(f"cannot create the folder for the download: {exc.strerror or exc}",
                        where=str(dest.parent),
                        hint="check the path and that the disk is mounted and writable") from exc

    import requests  # heavy; only when a download actually happens
    from tqdm.auto import tqdm

    own_session = session is None
    sess = requests.Session() if own_session else session
    bar = tqdm(total=None, unit="B", unit_scale=True, unit_divisor=1024,
               desc=dest.name, disable=not progress, leave=False)
    body = _Body()
    try:
        _fetch(sess, url, part, end=end, limit=limit, connect_timeout=connect_timeout,
               read_timeout=read_timeout, retries=retries, allow_http=allow_http, bar=bar,
               body=body, max_bytes=max_bytes)
    except _TooBig as exc:
        part.unlink(missing_ok=True)
        got = f"{exc.size} bytes" if exc.size is not None else "more"
        raise StepError(f"download is larger than its limit of {max_bytes} bytes ({got})",
                        where=url, hint="check that the URL points at the right file, or raise "
                                        "max_size in the profile") from None
    except StepError as error:
        if not _resumable(part, body, max_bytes) or getattr(error, "disk_error", False):
            part.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
        if own_session:
            sess.close()

    actual = sha256_file(part) if expected is not None else None
    if actual != expected:
        part.unlink(missing_ok=True)
        raise StepError(
            "downloaded file does not match its sha256",
            where=url,
            details=f"expected {expected}\ngot      {actual}",
            hint="the file at this URL changed or was corrupted; if the new file is the one "
                 "you want, put its sha256 in the profile, otherwise point the URL at the "
                 "exact version",
        )
    try:
        os.replace(part, dest)
    except OSError as exc:
        raise StepError(f"cannot move the download into place: {exc.strerror or exc}",
                        where=str(dest), hint="check that the folder is writable") from exc
    return dest


def _resumable(part: Path, body: _Body, max_bytes: int | None) -> bool:
    """Whether a ``.part`` left by a failure is worth keeping for the next call to resume."""
    try:
        size = part.stat().st_size
    except OSError:
        return False
    return (body.total is not None and 0 < size <= body.total
            and (max_bytes is None or size <= max_bytes))


def _fetch(sess: Any, url: str, part: Path, *, end: float, limit: float,
           connect_timeout: float, read_timeout: float, retries: int, allow_http: bool,
           bar: Any, body: _Body | None = None, max_bytes: int | None = None) -> None:
    """Attempt, back off and resume until ``part`` holds the whole body."""
    body = _Body() if body is None else body
    import requests
    import urllib3

    # Exceptions meaning "the network failed this attempt": requests wraps the
    # connect phase, but body reads go straight to urllib3 and the socket.
    network_errors = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)
    failures = 0  # attempts in a row that received no bytes
    last_error = ""
    while True:
        if time.monotonic() >= end:
            raise _deadline_error(url, limit, last_error)
        counter = _Counter()
        wait: float | None = None
        try:
            _attempt(sess, url, part, counter, end=end, limit=limit,
                     connect_timeout=connect_timeout, read_timeout=read_timeout,
                     allow_http=allow_http, bar=bar, body=body, max_bytes=max_bytes)
            return
        except _Retry as exc:
            last_error, wait = exc.reason, exc.wait
        except _DiskError as exc:
            error = StepError(f"cannot write the download: {exc.__cause__}", where=str(part),
                              hint="free disk space or choose another destination")
            error.disk_error = True  # type: ignore[attr-defined]
            raise error from exc
        except requests.exceptions.SSLError as exc:
            # A certificate that fails to verify will fail the same way again.
            raise StepError("TLS certificate check failed", where=url, details=str(exc),
                            hint="the server's certificate is not trusted here; check the "
                                 "URL, and the machine's clock and CA certificates") from exc
        except network_errors as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        failures = 0 if counter.received else failures + 1
        if failures > retries:
            raise StepError(
                f"download failed after {retries + 1} attempts in a row without progress",
                where=url,
                details=last_error or None,
                hint="check the network and that the URL opens in a browser; "
                     "whatever arrived is kept and the next run resumes it",
            )
        delay = min(_BACKOFF_BASE_S * 2 ** max(failures - 1, 0), _BACKOFF_MAX_S)
        if wait is not None:
            delay = min(max(delay, wait), _BACKOFF_MAX_S)
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise _deadline_error(url, limit, last_error)
        time.sleep(min(delay, remaining))


def _deadline_error(url: str, limit: float, last_error: str) -> StepError:
    return StepError(
        f"download did not finish within its deadline of {limit:g} s",
        where=url,
        details=last_error or None,
        hint="the server is stalled or too slow; try again later, or raise the deadline "
             "(whatever arrived is kept and the next run resumes it)",
    )


def _open_following_redirects(sess: Any, url: str, headers: dict[str, str], *, end: float,
                              limit: float, connect_timeout: float, read_timeout: float,
                              allow_http: bool) -> Any:
    """GET ``url`` following redirects ourselves, checking each hop before it is made."""
    current = url
    for _ in range(_MAX_REDIRECTS + 1):
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise _deadline_error(url, limit, "")
        # Never wait on one socket operation past the deadline (plus a little
        # slack, so the deadline error and not a timeout names the cause).
        timeout = (min(connect_timeout, remaining + 0.1), min(read_timeout, remaining + 0.1))
        resp = sess.get(current, headers=headers, stream=True, allow_redirects=False,
                        timeout=timeout)
        if resp.status_code in _REDIRECT_CODES and resp.headers.get("Location"):
            target = urljoin(current, resp.headers["Location"])
            resp.close()
            check_redirect(current, target, allow_http=allow_http)
            current = target
            continue
        # Belt and braces: whatever the session did, the body must come from
        # an allowed address.
        check_url(resp.url or current, allow_http=allow_http)
        return resp
    raise StepError(f"more than {_MAX_REDIRECTS} redirects", where=url,
                    hint="the server redirects in a loop; check the URL in a browser")


def _attempt(sess: Any, url: str, part: Path, counter: _Counter, *, end: float,
             limit: float, connect_timeout: float, read_timeout: float, allow_http: bool,
             bar: Any, body: _Body | None = None, max_bytes: int | None = None) -> None:
    """One GET that appends to or restarts ``part``; raises _Retry when worth retrying."""
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    resp = _open_following_redirects(sess, url, headers, end=end, limit=limit,
                                     connect_timeout=connect_timeout,
                                     read_timeout=read_timeout, allow_http=allow_http)
    try:
        status = resp.status_code
        if status == 206:
            parsed = _parse_content_range(resp.headers.get("Content-Range"))
            if parsed is None or parsed[0] != offset:
                # Some other range than we asked for: the safe move is to start over.
                part.unlink(missing_ok=True)
                raise _Retry(f"server answered Range bytes={offset}- with "
                             f"Content-Range {resp.headers.get('Content-Range')!r}")
            mode, total = "ab", parsed[1]
        elif status == 200:
            # A 200 is the whole body, even when we asked for a range: never append it.
            offset, mode = 0, "wb"
            length = resp.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
        elif status == 416 and offset:
            # Our .part is at least as long as the file. If the server says it is
            # exactly as long, it is complete (the checksum will tell); otherwise
            # it is stale, so start over.
            if _unsatisfied_size(resp.headers.get("Content-Range")) in (offset, None):
                return
            part.unlink(missing_ok=True)
            raise _Retry(f"HTTP 416 for Range bytes={offset}-; starting over")
        elif status in _RETRY_CODES:
            raise _Retry(f"HTTP {status} {resp.reason or ''}".rstrip(),
                         _retry_after(resp.headers.get("Retry-After")))
        else:
            raise _fail_status(url, status, resp.reason or "")

        if body is not None:
            body.total = total
        if max_bytes is not None and total is not None and total > max_bytes:
            raise _TooBig(total)
        bar.reset(total=total)
        bar.update(offset)
        _copy_body(resp.raw, part, mode, counter, url=url, end=end, limit=limit, bar=bar,
                   cap=None if max_bytes is None else max_bytes - offset)
        if total is not None and offset + counter.received != total:
            # urllib3 usually notices a short body itself; this covers the rest
            # (a Content-Range total without a Content-Length, say).
            raise _Retry(f"connection closed after {offset + counter.received} "
                         f"of {total} bytes")
    finally:
        resp.close()


def _copy_body(raw: Any, part: Path, mode: str, counter: _Counter, *, url: str, end: float,
               limit: float, bar: Any, cap: int | None = None) -> None:
    """Stream the undecoded body into ``part``, checking the deadline between chunks and
    that no more than ``cap`` bytes come."""
    # read1 returns whatever one socket read brings, so a trickling server
    # still lets us look at the clock; read(n) would block until n bytes came.
    read1 = getattr(raw, "read1", None)  # urllib3 >= 2.3
    try:
        f = open(part, mode)
    except OSError as exc:
        raise _DiskError() from exc
    with f:
        while True:
            if time.monotonic() >= end:
                raise _deadline_error(url, limit, f"stalled after {counter.received} new bytes")
            if read1 is not None:
                chunk = read1(_CHUNK, decode_content=False)
            else:
                chunk = raw.read(_CHUNK, decode_content=False)
            if not chunk:
                break
            if cap is not None and counter.received + len(chunk) > cap:
                raise _TooBig(None)
            try:
                f.write(chunk)
            except OSError as exc:
                raise _DiskError() from exc
            counter.received += len(chunk)
            bar.update(len(chunk))
        try:
            # Flushed and synced before the checksum and the rename, so a
            # crash cannot leave a renamed but empty file.
            f.flush()
            os.fsync(f.fileno())
        except OSError as exc:
            raise _DiskError() from exc


def _unsatisfied_size(value: str | None) -> int | None:
    """``bytes */1234`` (the form of a 416 answer) -> 1234."""
    if value:
        m = re.match(r"^\s*bytes\s+\*/(\d+)\s*$", value, re.IGNORECASE)
        if m:
            return int(m.group(1))
    return None
