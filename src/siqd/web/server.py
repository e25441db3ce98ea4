"""The dashboard's HTTP server: a thread in siqd that serves the pages and /metrics.

The server reads the store through a connection of its own, because the
daemon's connection belongs to the sampling loop. Requests run in threads
of their own and take turns on that connection. With a token configured,
every request must carry it; without one, the config only allows a
loopback address.
"""

import hmac
import socket
import socketserver
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from logging import ERROR, INFO
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from siqd.config import Config, parse_listen
from siqd.log import RepeatFilter, get_logger, log_event
from siqd.store import StoreError, StoreUnavailable, open_store
from siqd.web import host_pages, incident_pages, layout, prometheus

logger = get_logger("web")

# A client that sends or reads nothing for this many seconds is disconnected.
REQUEST_TIMEOUT = 30.0
# Connections served at once; more are closed at once instead of each taking a thread.
MAX_CONNECTIONS = 32
COOKIE_NAME = "siq_token"
COOKIE_MAX_AGE = 30 * 86400
MAX_INCIDENT_ID = 2**63 - 1  # store ids are 64-bit integers
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
# The pages need no script, frame or remote resource, so the browser may load none.
SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
                                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)


class Response:
    def __init__(self, status: int, content_type: str, text: str, headers: tuple = ()):
        self.status = status
        self.content_type = content_type
        self.body = text.encode("utf-8")
        self.headers = headers


class StoreAccess:
    """The web thread's store connection, opened on first use and opened again after an outage."""

    def __init__(self, location: str):
        self.location = location
        self.lock = threading.Lock()
        self.store = None

    @contextmanager
    def session(self):
        """Lend the connection to one request at a time; raise StoreError if the store cannot be opened."""
        with self.lock:
            if self.store is None:
                # The daemon migrates the schema at start; this connection only reads.
                self.store = open_store(self.location, migrate=False, create=False)
            try:
                yield self.store
            except StoreUnavailable:
                self._drop()
                raise

    def _drop(self) -> None:
        try:
            self.store.close()
        except Exception:  # the connection is already broken; the next request opens a new one
            pass
        self.store = None

    def close(self) -> None:
        # A request stuck in a slow query must not hold up siqd's exit.
        if self.lock.acquire(timeout=5):
            try:
                if self.store is not None:
                    self._drop()
            finally:
                self.lock.release()


class Dashboard:
    """The running dashboard: authentication, routing, its server thread and its store connection."""

    def __init__(self, config: Config, current_config: Callable[[], Config]):
        self.listen = config.web_listen
        self.token = config.web_token
        # The daemon's config as of now: a reload changes rules and stale_after, not listen or token.
        self.current_config = current_config
        self.store = StoreAccess(config.store)
        self.errors = RepeatFilter()
        self.server: DashboardServer | None = None
        self.thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> bool:
        """Bind the listen address and serve in a daemon thread; log and return False if it cannot bind."""
        host, port = parse_listen(self.listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self.server = DashboardServer((host, port), family, self)
        except OSError as error:
            log_event(logger, ERROR, "web_failed", listen=self.listen, error=error.strerror or error,
                      action="siqd keeps monitoring without the dashboard; free the port or change web.listen, "
                             "then restart siqd")
            return False
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.5},
                                       name="siq-web", daemon=True)
        self.thread.start()
        log_event(logger, INFO, "web_started", url=f"http://{self.listen}/",
                  auth="bearer token" if self.token else "none (loopback only)")
        return True

    def stop(self) -> None:
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
        self.store.close()
        self.server = None
        log_event(logger, INFO, "web_stopped", listen=self.listen)

    # -- requests --------------------------------------------------------------------------

    def handle(self, raw_path: str, query: list[tuple[str, str]], headers) -> Response:
        """Build the response to one GET request: check the token, then build the page."""
        now = time.time()
        if self.token is not None:
            query_tokens = [value for key, value in query if key == "token"]
            if query_tokens:
                if self._matches(query_tokens[-1]):
                    return self._sign_in(raw_path, query)
                return self._unauthorized(raw_path, now, "The token in the address is wrong.")
            if not self._authorized(headers):
                return self._unauthorized(raw_path, now, "This dashboard needs its token.")
        path = unquote(raw_path, errors="replace")
        try:
            return self._route(path, dict(query), now)
        except incident_pages.NotFound as error:
            return Response(404, HTML, layout.message_page("Not found", str(error), now, error.link))
        except host_pages.BadRequest as error:
            return Response(400, HTML, layout.message_page("Invalid request", str(error), now, ("/", "Incidents")))
        except StoreError as error:
            should_log, suppressed = self.errors.should_log("store", time.time())
            if should_log:
                log_event(logger, ERROR, "web_store_error", path=path, error=error, suppressed=suppressed or None)
            if path == "/metrics":
                return Response(503, TEXT, f"store error: {error}\n")
            return Response(503, HTML, layout.message_page("Store unavailable", str(error), now, refresh=True))
        except Exception as error:  # a bug in a page must not end the server thread
            where = traceback.extract_tb(error.__traceback__)[-1]
            should_log, suppressed = self.errors.should_log(f"page {path}", time.time())
            if should_log:
                log_event(logger, ERROR, "web_page_failed", path=path, error=f"{type(error).__name__}: {error}",
                          at=f"{where.filename}:{where.lineno}", suppressed=suppressed or None)
            return Response(500, HTML, layout.message_page(
                "Page failed", f"This page failed with {type(error).__name__}; siqd's log has the details.", now,
                ("/", "Incidents")))

    def _route(self, path: str, query: dict[str, str], now: float) -> Response:
        if path != "/":
            path = path.rstrip("/")
        config = self.current_config()
        if path == "/metrics":
            with self.store.session() as store:
                text = prometheus.metrics_text(store, now, config.stale_after, config.interval)
            self.errors.forget("store")
            return Response(200, prometheus.CONTENT_TYPE, text)
        with self.store.session() as store:
            if path in ("/", "/incidents"):
                html = incident_pages.incidents_page(store, now)
            elif path.startswith("/incidents/"):
                html = incident_pages.incident_page(store, config, now, _incident_id(path))
            elif path == "/hosts":
                html = host_pages.hosts_page(store, config, now)
            elif path.startswith("/hosts/"):
                html = host_pages.host_page(store, config, now, path[len("/hosts/"):], query.get("since"))
            else:
                raise incident_pages.NotFound(f"There is no page at {path}.", ("/", "Incidents"))
        self.errors.forget("store")
        return Response(200, HTML, html)

    # -- authentication --------------------------------------------------------------------

    def _matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode("utf-8", "replace"), self.token.encode("utf-8"))

    def _authorized(self, headers) -> bool:
        scheme, _, credentials = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and self._matches(credentials.strip()):
            return True
        for part in (headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE_NAME and self._matches(value):
                return True
        return False

    def _sign_in(self, raw_path: str, query: list[tuple[str, str]]) -> Response:
        """Set the token cookie and redirect to the same address without the token, so links work without it."""
        rest = urlencode([(key, value) for key, value in query if key != "token"])
        location = "/" + raw_path.lstrip("/") + (f"?{rest}" if rest else "")  # never "//host": stay on this site
        cookie = f"{COOKIE_NAME}={self.token}; Path=/; Max-Age={COOKIE_MAX_AGE}; HttpOnly; SameSite=Lax"
        body = f'<!DOCTYPE html><p>Signed in; continue to <a href="{layout.esc(location)}">{layout.esc(location)}</a>.'
        return Response(303, HTML, body, (("Location", location), ("Set-Cookie", cookie)))

    def _unauthorized(self, raw_path: str, now: float, reason: str) -> Response:
        challenge = (("WWW-Authenticate", 'Bearer realm="siq"'),)
        if raw_path.rstrip("/") == "/metrics":
            return Response(401, TEXT, f"{reason} Send the header 'Authorization: Bearer TOKEN' with web.token "
                                       "from siqd's config.\n", challenge)
        page_path = "/" + raw_path.lstrip("/")
        extra = (
            f"<p>Open <code>{layout.esc(page_path)}?token=TOKEN</code> once in this browser, with the value of "
            "<code>web.token</code> from siqd's config: the browser keeps it as a cookie for 30 days. Scripts and "
            "Prometheus send the header <code>Authorization: Bearer TOKEN</code> instead.</p>"
        )
        return Response(401, HTML, layout.message_page("Token required", reason, now, extra=extra), challenge)


def _incident_id(path: str) -> int:
    text = path[len("/incidents/"):]
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_INCIDENT_ID:
        raise incident_pages.NotFound(f"{text!r} is not an incident number.", ("/", "All incidents"))
    return int(text)


class DashboardHandler(BaseHTTPRequestHandler):
    server_version = "siqd"
    timeout = REQUEST_TIMEOUT  # applied to the client socket: a stalled client times out

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def _respond(self, send_body: bool) -> None:
        url = urlsplit(self.path)
        response = self.server.dashboard.handle(url.path or "/", parse_qsl(url.query, keep_blank_values=True),
                                                self.headers)
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in SECURITY_HEADERS + tuple(response.headers):
                self.send_header(name, value)
            self.end_headers()
            if send_body:
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client disconnected, so no response is sent

    def log_message(self, format: str, *args) -> None:
        """Log nothing per request: a request line can carry the token, and pages refresh every 30 s."""


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], family: int, dashboard: Dashboard):
        self.address_family = family
        self.dashboard = dashboard
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, DashboardHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can wait on DNS; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def start_dashboard(config: Config, current_config: Callable[[], Config]) -> Dashboard | None:
    """Start serving the dashboard of `config`; return it, or None if the address could not be bound."""
    dashboard = Dashboard(config, current_config)
    return dashboard if dashboard.start() else None
