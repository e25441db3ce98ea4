"""TCP checks: a connection to host:port opens within the timeout, over IPv4 or IPv6."""

import socket
import time

from siqd.checks import CRITICAL, OK, Result, format_elapsed, format_timeout
from siqd.records import Record

ADDRESS_FORM = '"HOST:PORT", such as "127.0.0.1:5432", "localhost:6379" or "[::1]:8080"'


class TcpOptions(Record):
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str) -> tuple[str, int]:
    """Split "host:port" or "[v6]:port" into host and port; raise ValueError with the reason."""
    from siqd.config import split_host_port

    return split_host_port(text, ADDRESS_FORM)


def read_options(table) -> TcpOptions:
    address = table.string("address", required=True)
    try:
        host, port = parse_address(address)
    except ValueError as error:
        raise table.error("address", str(error)) from None
    return TcpOptions(host=host, port=port)


def settings(options: TcpOptions) -> dict:
    return {"address": options.address}


def run(check) -> Result:
    """Try each address the host resolves to, in order, within one shared timeout."""
    options: TcpOptions = check.options
    started = time.monotonic()
    deadline = started + check.timeout

    def elapsed() -> float:
        return time.monotonic() - started

    try:
        addresses = socket.getaddrinfo(options.host, options.port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        return Result(CRITICAL, f"cannot resolve {options.host!r}: {error.strerror}", elapsed())
    failures = []
    for family, kind, protocol, _, sockaddr in addresses:
        target = f"[{sockaddr[0]}]:{sockaddr[1]}" if family == socket.AF_INET6 else f"{sockaddr[0]}:{sockaddr[1]}"
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock = socket.socket(family, kind, protocol)
        try:
            sock.settimeout(left)
            sock.connect(sockaddr)
            return Result(OK, f"connected to {target} in {format_elapsed(elapsed())}", elapsed())
        except TimeoutError:
            failures.append(f"timed out after {format_timeout(check.timeout)} connecting to {target}")
        except ConnectionRefusedError:
            failures.append(f"connection refused by {target}")
        except OSError as error:
            failures.append(f"connecting to {target} failed: {error.strerror or error}")
        finally:
            sock.close()
    if not failures:
        failures.append(f"timed out after {format_timeout(check.timeout)} connecting to {options.address}")
    return Result(CRITICAL, "; ".join(failures), elapsed())
