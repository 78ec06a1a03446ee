"""A PEP 503 "simple" package index over a folder of wheels, served on 127.0.0.1."""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path

from tests.support.httpserver import LoopbackServer, send_bytes


def _project(filename: str) -> str:
    name = filename.split("-", 1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def simple_index(folder: Path) -> LoopbackServer:
    """A server (not started) with /simple/<project>/ pages linking to /files/<wheel>.

    Every request is recorded, so a test can tell which projects were asked for.
    """
    files = sorted(p for p in folder.iterdir() if p.suffix == ".whl" or p.name.endswith(".tar.gz"))
    projects: dict[str, list[Path]] = {}
    for path in files:
        projects.setdefault(_project(path.name), []).append(path)

    def page(body: str):
        data = f"<!DOCTYPE html><html><body>{body}</body></html>".encode()
        return lambda req: send_bytes(req, data, honor_range=False, content_type="text/html")

    server = LoopbackServer(root=None)
    server.route("/simple/", page("".join(f'<a href="{p}/">{p}</a>' for p in projects)))
    for project, paths in projects.items():
        links = "".join(
            f'<a href="/files/{html.escape(p.name)}#sha256='
            f'{hashlib.sha256(p.read_bytes()).hexdigest()}">{html.escape(p.name)}</a>'
            for p in paths)
        server.route(f"/simple/{project}/", page(links))
    for path in files:
        data = path.read_bytes()
        server.route(f"/files/{path.name}", lambda req, data=data: send_bytes(req, data))
    return server


def asked_for(server: LoopbackServer) -> set[str]:
    """The projects whose index page was requested."""
    return {r.path.split("/")[2] for r in server.requests
            if r.path.startswith("/simple/") and r.path.count("/") == 3}
