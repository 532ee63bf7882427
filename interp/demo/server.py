"""The demo's local web server: the page, its static files, and the run as Server-Sent Events.

Standard library only (:class:`http.server.ThreadingHTTPServer`), one thread per connection, bound
to 127.0.0.1 unless told otherwise. Routes:

- ``GET /``: the page; ``GET /static/<file>``: its script and style (``interp/resources/demo``)
  and ``plotly.min.js`` from the installed plotly package (no CDN; the page works offline);
- ``GET /api/config``: directions, layers, presets, alpha range (JSON);
- ``GET /api/run?client=...&question=...&item=...&sad=...&belief=...``
  ``&direction=...&layer=...&alpha=...``:
  the run's events as ``text/event-stream`` (``meta``, ``score``, ``tokens``, ``done``; an invalid
  control gives one ``invalid`` event naming it);
- ``POST /api/cancel?client=...``: stop that client's run; ``GET /api/health``.

Robustness on stage: a new run from the same client cancels its previous one (the inputs
changed); the model lock is held one step at a time, so one slow run never blocks the next; a
browser that goes away mid-stream only cancels its own run (the write error is caught there).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from interp.demo.inputs import DemoInputError, request_from_params
from interp.demo.session import DemoSession

log = logging.getLogger(__name__)

STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def static_dir() -> Path:
    """The page's files inside the installed package."""
    return Path(str(resources.files("interp") / "resources" / "demo"))


def plotly_js() -> Path:
    """``plotly.min.js`` shipped inside the installed plotly package."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"plotly.min.js not found at {path}; reinstall plotly")
    return path


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RunRegistry:
    """The current run of each client: starting a new one cancels the old one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, threading.Event] = {}

    def start(self, client: str) -> threading.Event:
        event = threading.Event()
        with self._lock:
            old = self._runs.get(client)
            if old is not None:
                old.set()
            self._runs[client] = event
        return event

    def cancel(self, client: str) -> bool:
        with self._lock:
            event = self._runs.pop(client, None)
        if event is not None:
            event.set()
        return event is not None

    def finish(self, client: str, event: threading.Event) -> None:
        with self._lock:
            if self._runs.get(client) is event:
                del self._runs[client]

    def active(self) -> int:
        with self._lock:
            return len(self._runs)


class DemoHandler(BaseHTTPRequestHandler):
    """Routes of the demo (see module doc); ``server`` is a :class:`DemoServer`."""

    server: DemoServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    # ---------------------------------------------------------------- plumbing

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj: Any, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _params(self) -> dict[str, str]:
        query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        return {k: v[-1] for k, v in query.items()}

    # ---------------------------------------------------------------- routes

    def do_GET(self) -> None:
        route = urlsplit(self.path).path
        try:
            if route in ("/", "/index.html"):
                self._file(static_dir() / "index.html")
            elif route == "/static/plotly.min.js":
                self._file(plotly_js())
            elif route.startswith("/static/"):
                self._static(route.removeprefix("/static/"))
            elif route == "/api/config":
                self._json(self.server.session.describe())
            elif route == "/api/health":
                self._json({"ok": True, "active_runs": self.server.runs.active()})
            elif route == "/api/run":
                self._run()
            else:
                self._json({"error": f"no route {route}"}, HTTPStatus.NOT_FOUND)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("client went away during %s", route)

    def do_POST(self) -> None:
        route = urlsplit(self.path).path
        if route == "/api/cancel":
            client = self._params().get("client", "")
            self._json({"cancelled": self.server.runs.cancel(client)})
        else:
            self._json({"error": f"no route {route}"}, HTTPStatus.NOT_FOUND)

    def _static(self, name: str) -> None:
        allowed = {p.name: p for p in static_dir().iterdir() if p.is_file()}
        if name not in allowed:  # only the folder's own files, never a path
            self._json({"error": f"no static file {name!r}"}, HTTPStatus.NOT_FOUND)
            return
        self._file(allowed[name])

    def _file(self, path: Path) -> None:
        self._send(
            HTTPStatus.OK,
            path.read_bytes(),
            STATIC_TYPES.get(path.suffix, "application/octet-stream"),
        )

    def _event(self, event: dict[str, Any]) -> None:
        self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
        self.wfile.flush()

    def _run(self) -> None:
        params = self._params()
        client = params.get("client") or f"anon-{self.client_address[1]}"
        cancel = self.server.runs.start(client)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        events: Iterator[dict[str, Any]] | None = None
        try:
            try:
                events = self.server.session.run(request_from_params(params), cancel)
            except DemoInputError as exc:
                self._event({"type": "invalid", "field": exc.field, "message": exc.message})
                return
            for event in events:
                self._event(event)
        except (BrokenPipeError, ConnectionResetError):
            cancel.set()  # the browser went away: stop computing for it
            log.info("client %s closed the stream; its run is cancelled", client)
        except Exception as exc:  # one bad run must not take the stage down
            log.exception("run failed")
            with contextlib.suppress(OSError):
                self._event({"type": "error", "message": f"{type(exc).__name__}: {exc}"})
        finally:
            if events is not None and hasattr(events, "close"):
                events.close()  # type: ignore[attr-defined]
            self.server.runs.finish(client, cancel)


class DemoServer(ThreadingHTTPServer):
    """The HTTP server holding one :class:`DemoSession` and the clients' runs."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, session: DemoSession, host: str = "127.0.0.1", port: int = 8765):
        self.session = session
        self.runs = RunRegistry()
        super().__init__((host, port), DemoHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{name}:{port}/"

    def serve_in_thread(self) -> threading.Thread:
        """Serve on a daemon thread (tests, benchmarks); stop with :meth:`shutdown`."""
        thread = threading.Thread(target=self.serve_forever, name="interp-demo", daemon=True)
        thread.start()
        return thread
