"""Targets for the check tests, all on 127.0.0.1 or ::1: HTTP(S) servers, a listener that never responds,
and a CA with leaf certificates made by the test."""

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class HttpTarget:
    """An HTTP server whose response the test changes: status, body and a delay before responding.

    /old redirects to /, and /loop redirects to itself. Each request's headers are kept.
    """

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None):
        self.status = 200
        self.body = b"Welcome to the shop"
        self.delay = 0.0
        self.requests: list[dict] = []
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                target.requests.append({"path": self.path, "headers": dict(self.headers), "method": self.command})
                if target.delay:
                    time.sleep(target.delay)
                if self.path == "/old":
                    self._answer(302, b"", {"Location": "/"})
                elif self.path == "/loop":
                    self._answer(302, b"", {"Location": "/loop"})
                else:
                    self._answer(target.status, target.body, {"Content-Type": "text/plain; charset=utf-8"})

            do_HEAD = do_GET

            def _answer(self, status: int, body: bytes, headers: dict):
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        server_class = ThreadingHTTPServer
        if ":" in host:
            class V6Server(ThreadingHTTPServer):
                address_family = socket.AF_INET6
            server_class = V6Server
        self.server = server_class((host, 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        scheme = "https" if tls is not None else "http"
        shown_host = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{shown_host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SilentListener:
    """Accepts TCP connections on 127.0.0.1 and never reads or writes on them, like a hung server."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def stop(self) -> None:
        self.sock.close()
        for connection in self.accepted:
            connection.close()


def closed_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ipv6_loopback_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


# --- certificates ------------------------------------------------------------------------------


class Certificates:
    """A CA and leaf certificates for localhost and 127.0.0.1, written as PEM files into `folder`."""

    def __init__(self, folder: Path):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.folder = folder
        self.now = datetime.datetime.now(datetime.timezone.utc)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "siq test CA")])
        self.ca_name = name
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - datetime.timedelta(days=30))
            .not_valid_after(self.now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key()), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_file = self._write("ca.pem", self.ca_cert)

    def _write(self, name: str, cert) -> Path:
        from cryptography.hazmat.primitives import serialization

        path = self.folder / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def leaf(self, name: str, valid_from: datetime.timedelta, valid_until: datetime.timedelta,
             self_signed: bool = False) -> tuple[Path, Path]:
        """Make a server certificate valid from now + valid_from to now + valid_until; return (cert, key) files."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        issuer_key = key if self_signed else self.ca_key
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject if self_signed else self.ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now + valid_from)
            .not_valid_after(self.now + valid_until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                           critical=False)
        )
        cert = builder.sign(issuer_key, hashes.SHA256())
        cert_file = self._write(f"{name}.pem", cert)
        key_file = self.folder / f"{name}.key"
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_file, key_file


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_file), str(key_file))
    return context
