"""HTTP(S) checks: status code, latency, body text and the TLS certificate's days left.

Every step (connect, TLS handshake, request, each read of the body) gets
the time left until the check's timeout as its socket timeout, so a
server that accepts and never responds ends the run at the timeout. A
server that trickles its response a byte at a time never trips a socket
timeout, so a timer also shuts the socket down when the timeout passes.
"""

import http.client
import re
import socket
import ssl
import threading
import time
from datetime import datetime, timezone
from urllib.parse import urljoin, urlsplit

from siqd import __version__
from siqd.checks import CRITICAL, OK, WARNING, Result, format_elapsed, format_timeout
from siqd.durations import format_duration
from siqd.records import Factory, Record

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DEFAULT_EXPECT = [(200, 399)]
DEFAULT_TLS_WARN_DAYS = 14.0
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 10
# The body is read up to this many bytes, and body_contains and body_regex search that part only.
BODY_LIMIT = 1_000_000
USER_AGENT = f"siq-check/{__version__}"
# RFC 9110 token characters, the form of a header name.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# OpenSSL's verify codes for a certificate no configured CA vouches for: self-signed,
# self-signed in the chain, unknown issuer (local or the chain's).
UNTRUSTED_CODES = (18, 19, 20, 21)
EXPIRED_CODE = 10
NOT_YET_VALID_CODE = 9


class HttpOptions(Record):
    url: str
    method: str = "GET"
    expect_status: list[tuple[int, int]] = Factory(lambda: list(DEFAULT_EXPECT))  # inclusive ranges
    max_latency: float | None = None
    body_contains: str | None = None
    body_regex: re.Pattern | None = None
    headers: dict[str, str] = Factory(dict)
    follow_redirects: bool = True
    tls_warn_days: float = DEFAULT_TLS_WARN_DAYS
    ca_file: str | None = None


# --- config -------------------------------------------------------------------------------


def read_options(table) -> HttpOptions:
    url = table.string("url", required=True)
    problem = url_problem(url)
    if problem:
        raise table.error("url", problem)

    method = table.string("method", "GET")
    if method.upper() not in METHODS:
        raise table.error("method", f"expected one of {', '.join(METHODS)}, got {method!r}")
    method = method.upper()
    expect = read_expect_status(table)
    max_latency = table.duration("max_latency", None)
    if max_latency is not None and max_latency <= 0:
        raise table.error("max_latency", "must be more than 0s")

    body_contains = table.string("body_contains")
    if body_contains == "":
        raise table.error("body_contains", "must not be empty")
    pattern_text = table.string("body_regex")
    body_regex = None
    if pattern_text is not None:
        try:
            body_regex = re.compile(pattern_text)
        except re.error as error:
            raise table.error("body_regex", f"invalid regular expression {pattern_text!r}: {error}") from None
    if method == "HEAD" and (body_contains is not None or body_regex is not None):
        raise table.error("method", "a HEAD response has no body; use GET with body_contains or body_regex")

    headers = read_headers(table)
    tls_warn_days = table.number("tls_warn_days", DEFAULT_TLS_WARN_DAYS)
    if tls_warn_days < 0:
        raise table.error("tls_warn_days", f"must be 0 or more, got {tls_warn_days:g}")

    return HttpOptions(
        url=url, method=method, expect_status=expect, max_latency=max_latency, body_contains=body_contains,
        body_regex=body_regex, headers=headers,
        follow_redirects=table.get("follow_redirects", bool, "true or false", True),
        tls_warn_days=tls_warn_days, ca_file=read_ca_file(table),
    )


def url_problem(url: str) -> str | None:
    """Return why `url` cannot be checked, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"expected an http:// or https:// URL, got {url!r}"
    if not parts.hostname:
        return f"no host in {url!r}; expected e.g. \"http://127.0.0.1:8080/health\""
    try:
        parts.port
    except ValueError:
        return f"invalid port in {url!r}; expected a number from 1 to 65535"
    if any(character.isspace() for character in url):
        return f"{url!r} contains whitespace; write spaces as %20"
    return None


def read_expect_status(table) -> list[tuple[int, int]]:
    raw = table.get("expect_status", (int, str, list), 'a status code, a range such as "200-299", or a list '
                                                        "of them", None)
    if raw is None:
        return list(DEFAULT_EXPECT)
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise table.error("expect_status", "must not be an empty list")
    ranges = []
    for item in items:
        found = _status_range(item)
        if found is None:
            raise table.error("expect_status", f"invalid status {item!r}; expected a code from 100 to 599 or a "
                                               "range such as \"200-299\"")
        ranges.append(found)
    return ranges


def _status_range(item) -> tuple[int, int] | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        low = high = item
    elif isinstance(item, str):
        match = re.fullmatch(r"\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?", item)
        if match is None:
            return None
        low = int(match.group(1))
        high = int(match.group(2) or low)
    else:
        return None
    if not 100 <= low <= high <= 599:
        return None
    return low, high


def read_headers(table) -> dict[str, str]:
    raw = table.get("headers", dict, "a table of header names and string values", {})
    headers = {}
    for name, value in raw.items():
        if not HEADER_NAME.fullmatch(name):
            raise table.error("headers", f"invalid header name {name!r}")
        if not isinstance(value, str):
            raise table.error(f"headers.{name}", "expected a string")
        if "\r" in value or "\n" in value:
            raise table.error(f"headers.{name}", "must not contain a line break")
        headers[name] = value
    return headers


def read_ca_file(table) -> str | None:
    from pathlib import Path

    text = table.string("ca_file")
    if text is None:
        return None
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise table.error("ca_file", f"expected an absolute path, got {text!r}")
    try:
        ssl.create_default_context(cafile=str(path))
    except FileNotFoundError:
        raise table.error("ca_file", f"{path} not found") from None
    except PermissionError:
        raise table.error("ca_file", f"{path} is not readable; let siq's user read it") from None
    except IsADirectoryError:
        raise table.error("ca_file", f"{path} is a folder; expected a file of PEM certificates") from None
    except ssl.SSLError as error:
        raise table.error("ca_file", f"{path} contains no usable PEM certificate ({error.reason or error})") \
            from None
    return str(path)


def expect_text(ranges: list[tuple[int, int]]) -> str:
    return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


def settings(options: HttpOptions) -> dict:
    entry = {
        "url": options.url,
        "method": options.method,
        "expect_status": [str(low) if low == high else f"{low}-{high}" for low, high in options.expect_status],
        "follow_redirects": options.follow_redirects,
        "tls_warn_days": options.tls_warn_days,
    }
    if options.max_latency is not None:
        entry["max_latency"] = format_duration(options.max_latency, exact=True)
    if options.body_contains is not None:
        entry["body_contains"] = options.body_contains
    if options.body_regex is not None:
        entry["body_regex"] = options.body_regex.pattern
    if options.headers:
        entry["headers"] = dict(options.headers)
    if options.ca_file:
        entry["ca_file"] = options.ca_file
    return entry


# --- running ------------------------------------------------------------------------------


class _Failed(Exception):
    """The request got no usable response. The message is the check's reason."""


class Answer(Record):
    status: int
    location: str | None
    body: str
    truncated: bool  # the body was longer than BODY_LIMIT
    cert_expires: float | None  # epoch seconds of the server certificate's notAfter; None for http://


def run(check) -> Result:
    options: HttpOptions = check.options
    started = time.monotonic()
    deadline = started + check.timeout
    url, method = options.url, options.method
    cert_expires = None
    redirects = 0
    try:
        while True:
            answer = exchange(url, method, options, deadline, check.timeout)
            if cert_expires is None:
                cert_expires = answer.cert_expires
            if not (options.follow_redirects and answer.status in REDIRECT_STATUSES and answer.location):
                break
            target = urljoin(url, answer.location)
            if url_problem(target):
                raise _Failed(f"HTTP {answer.status} redirects to {answer.location!r}, "
                              "which is no http:// or https:// URL")
            if redirects == MAX_REDIRECTS:
                raise _Failed(f"more than {MAX_REDIRECTS} redirects; the last one went to {target}")
            if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
                method = "GET"
            url = target
            redirects += 1
    except _Failed as failure:
        return Result(CRITICAL, str(failure), time.monotonic() - started)
    elapsed = time.monotonic() - started
    return judge(options, answer, elapsed, redirects, cert_expires, time.time())


def judge(options: HttpOptions, answer: Answer, elapsed: float, redirects: int, cert_expires: float | None,
          now: float) -> Result:
    """Turn a response into a status and a reason: the HTTP part first, then the certificate's."""
    summary = f"HTTP {answer.status} in {format_elapsed(elapsed)}"
    if redirects:
        summary += f" after {redirects} redirect{'s' if redirects > 1 else ''}"
    details = []
    if not any(low <= answer.status <= high for low, high in options.expect_status):
        details.append(f"expected {expect_text(options.expect_status)}")
    if options.max_latency is not None and elapsed > options.max_latency:
        details.append(f"slower than max_latency {format_timeout(options.max_latency)}")
    scope = f" in its first {BODY_LIMIT // 1_000_000} MB" if answer.truncated else ""
    if options.body_contains is not None and options.body_contains not in answer.body:
        details.append(f"body does not contain {options.body_contains!r}{scope}")
    if options.body_regex is not None and not options.body_regex.search(answer.body):
        details.append(f"body does not match {options.body_regex.pattern!r}{scope}")
    http_text = f"{summary} ({', '.join(details)})" if details else summary

    measures = []
    tls_text = None
    tls_status = OK
    if cert_expires is not None:
        left = cert_expires - now
        measures.append(("check.tls_days_left", {}, round(left / 86400, 3), ""))
        if left < options.tls_warn_days * 86400:
            tls_status = WARNING
            tls_text = f"certificate expires in {time_left(left)} (on {utc_minute(cert_expires)})"
        else:
            tls_text = f"certificate valid for {time_left(left)}"

    if details:
        reason = f"{http_text}; {tls_text}" if tls_status == WARNING else http_text
        return Result(CRITICAL, reason, elapsed, measures)
    if tls_status == WARNING:
        return Result(WARNING, f"{tls_text}; {http_text}", elapsed, measures)
    reason = f"{http_text}; {tls_text}" if tls_text else http_text
    return Result(OK, reason, elapsed, measures)


def time_left(seconds: float) -> str:
    """Format the time until a certificate expires: whole days from two days on, else "1d23h", "5h2m"."""
    if seconds >= 2 * 86400:
        return f"{int(seconds // 86400)} days"
    return format_duration(seconds - seconds % 60)  # whole minutes, rounded down so it never overstates


def utc_minute(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the check's timeout has passed")
    return left


def exchange(url: str, method: str, options: HttpOptions, deadline: float, timeout: float) -> Answer:
    """Send one request and read its response. Raise _Failed with the reason when there is none."""
    parts = urlsplit(url)
    host = parts.hostname
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"User-Agent": USER_AGENT, "Connection": "close", **options.headers}
    phase = ["connecting"]  # the step under way, which _read_answer updates, for the failure reason
    connection = None
    try:
        if https:
            context = ssl.create_default_context(cafile=options.ca_file)
            connection = http.client.HTTPSConnection(host, port, timeout=_remaining(deadline), context=context)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=_remaining(deadline))
        connection.connect()
        sock = connection.sock
        expired = threading.Event()
        watchdog = threading.Timer(_remaining(deadline), _expire, args=(sock, expired))
        watchdog.daemon = True
        watchdog.start()
        try:
            return _read_answer(connection, sock, method, target, headers, https, deadline, phase)
        except (OSError, http.client.HTTPException):
            if expired.is_set():
                raise TimeoutError from None
            raise
        finally:
            watchdog.cancel()
            if expired.is_set():  # a body cut short by the watchdog reads as complete; it is not
                raise TimeoutError from None
    except TimeoutError:
        raise _Failed(f"timed out after {format_timeout(timeout)} {phase[0]} ({where})") from None
    except ssl.SSLCertVerificationError as error:
        raise _Failed(certificate_problem(host, error.verify_code, error.verify_message)) from None
    except ssl.SSLError as error:
        raise _Failed(f"TLS handshake with {where} failed: {error.reason or error}") from None
    except ConnectionRefusedError:
        raise _Failed(f"connection refused by {where}") from None
    except ConnectionResetError:
        raise _Failed(f"connection reset by {where} while {phase[0]}") from None
    except http.client.RemoteDisconnected:
        raise _Failed(f"{where} closed the connection without a response") from None
    except http.client.HTTPException as error:
        raise _Failed(f"invalid HTTP response from {where}: {type(error).__name__} {error}".rstrip()) from None
    except socket.gaierror as error:
        raise _Failed(f"cannot resolve {host!r}: {error.strerror}") from None
    except OSError as error:
        raise _Failed(f"connection to {where} failed while {phase[0]}: {error.strerror or error}") from None
    finally:
        if connection is not None:
            connection.close()


def _expire(sock, expired: threading.Event) -> None:
    """Shut a socket down from the watchdog timer, which wakes the read that is waiting on it."""
    expired.set()
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _read_answer(connection, sock, method: str, target: str, headers: dict, https: bool, deadline: float,
                 phase: list[str]) -> Answer:
    """Send the request on a connected socket and read the response, up to BODY_LIMIT bytes of body."""
    cert_expires = None
    if https:
        cert = sock.getpeercert()
        if cert and cert.get("notAfter"):
            cert_expires = float(ssl.cert_time_to_seconds(cert["notAfter"]))
    phase[0] = "waiting for the response"
    sock.settimeout(_remaining(deadline))
    connection.request(method, target, headers=headers)
    sock.settimeout(_remaining(deadline))
    response = connection.getresponse()
    phase[0] = "reading the body"
    body = bytearray()
    # The response closes the socket once it has read the whole body.
    while len(body) <= BODY_LIMIT and not response.isclosed():
        sock.settimeout(_remaining(deadline))
        chunk = response.read(min(65536, BODY_LIMIT + 1 - len(body)))
        if not chunk:
            break
        body += chunk
    truncated = len(body) > BODY_LIMIT
    del body[BODY_LIMIT:]
    charset = response.headers.get_content_charset() or "utf-8"
    try:
        text = bytes(body).decode(charset, errors="replace")
    except LookupError:
        text = bytes(body).decode("utf-8", errors="replace")
    return Answer(response.status, response.getheader("Location"), text, truncated, cert_expires)


def certificate_problem(host: str, code: int, message: str) -> str:
    """Describe why the server's certificate was rejected, with what to do about it."""
    if code == EXPIRED_CODE:
        return f"TLS certificate of {host} has expired"
    if code == NOT_YET_VALID_CODE:
        return f"TLS certificate of {host} is not valid yet; check the clocks"
    if code in UNTRUSTED_CODES:
        return f"TLS certificate of {host} is not trusted ({message}); set ca_file to the CA that signed it"
    return f"TLS certificate of {host} rejected: {message}"
