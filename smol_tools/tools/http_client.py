"""A small HTTP client that only talks to vetted addresses.

Each hop: vet the URL (netguard), open a TCP connection to one of the vetted IPs ourselves,
and speak HTTP to it with the original host name in the Host header and, for https, in SNI and
the certificate check. The host name is never resolved a second time, so DNS rebinding cannot
swap the address. Redirects are followed here (never by a library), each one vetted again.
The stdlib http.client is used on purpose: it reads no proxy variables from the environment
and lets us own connect()."""

from __future__ import annotations

import codecs
import http.client
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from .base import ToolError, ToolSettings, shorten
from .netguard import VettedTarget, vet_url

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "smol-tools/0.1 (tool-calling demo; +https://huggingface.co)"
_CHUNK = 65536
# Credentials must not follow a redirect to another origin.
_ORIGIN_BOUND_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


@dataclass
class HttpResponse:
    url: str  # the final URL, after redirects
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    truncated: bool  # the body was longer than max_response_bytes
    redirects: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()

    def text(self) -> str:
        """The body decoded with its declared charset (UTF-8 when absent or unknown)."""
        charset = "utf-8"
        for param in (self.header("content-type") or "").split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset" and value.strip():
                charset = value.strip().strip("\"'")
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = "utf-8"
        return self.body.decode(charset, errors="replace")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to `host` (Host header) over a socket connected to `pinned_ip`."""

    def __init__(self, host: str, port: int, pinned_ip: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.pinned_ip = pinned_ip

    def connect(self) -> None:
        self.sock = socket.create_connection((self.pinned_ip, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """HTTPS: TLS with SNI and certificate verification for `host`, on the pinned socket."""

    default_port = http.client.HTTPS_PORT

    def __init__(self, host: str, port: int, pinned_ip: str, timeout: float) -> None:
        super().__init__(host, port, pinned_ip, timeout)
        self._tls = ssl.create_default_context()

    def connect(self) -> None:
        super().connect()
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=self.host)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _connect(target: VettedTarget, deadline: float) -> _PinnedHTTPConnection:
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    last_error: Exception | None = None
    for ip in target.addresses:
        connection = connection_class(target.host, target.port, ip, timeout=_remaining(deadline))
        try:
            connection.connect()
            return connection
        except ssl.SSLError as exc:
            connection.close()
            raise ToolError(f"TLS error with {target.host}: {exc.reason or exc}") from None
        except OSError as exc:
            connection.close()
            if isinstance(exc, TimeoutError):
                raise
            last_error = exc
    raise ToolError(f"could not connect to {target.host}:{target.port}: {getattr(last_error, 'strerror', None) or last_error}")


def _send_once(
    target: VettedTarget,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    deadline: float,
    max_bytes: int,
    read_body: bool,
) -> HttpResponse:
    connection = _connect(target, deadline)
    try:
        connection.putrequest(method, target.request_target, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        connection.sock.settimeout(_remaining(deadline))
        response = connection.getresponse()
        status, reason = response.status, response.reason
        response_headers = [(key, shorten(value, 1000)) for key, value in response.getheaders()]
        chunks: list[bytes] = []
        received = 0
        if read_body and method != "HEAD":
            while received <= max_bytes:
                connection.sock.settimeout(_remaining(deadline))  # a slow drip cannot outlive the deadline
                chunk = response.read(min(_CHUNK, max_bytes + 1 - received))
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
        payload = b"".join(chunks)
        return HttpResponse(
            url=target.url,
            status=status,
            reason=reason,
            headers=response_headers,
            body=payload[:max_bytes],
            truncated=len(payload) > max_bytes,
        )
    finally:
        connection.close()


def _same_origin(first: str, second: str) -> bool:
    a, b = urlsplit(first), urlsplit(second)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def fetch(
    url: str,
    settings: ToolSettings,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    follow_redirects: bool = True,
) -> HttpResponse:
    """Send one request, following up to settings.max_redirects vetted redirects."""
    if not settings.allow_network:
        raise ToolError("network access is disabled on this server (ToolSettings.allow_network=False)")
    deadline = time.monotonic() + settings.http_timeout_s
    request_headers = {"User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close", **(headers or {})}
    redirects: list[str] = []
    current = url
    try:
        while True:
            target = vet_url(current, settings)
            response = _send_once(
                target, method, request_headers, body, deadline, settings.max_response_bytes, read_body=True
            )
            location = response.header("location")
            if not (follow_redirects and response.status in REDIRECT_STATUSES and location):
                response.redirects = redirects
                return response
            if len(redirects) >= settings.max_redirects:
                raise ToolError(f"too many redirects (more than {settings.max_redirects}); last: {shorten(location)}")
            following = urljoin(target.url, location)
            # Browsers' rules: 303 always, and 301/302 after POST, become a body-less GET.
            if (response.status == 303 and method != "HEAD") or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", None
                request_headers = {k: v for k, v in request_headers.items() if k.lower() != "content-type"}
            if not _same_origin(target.url, following):
                request_headers = {k: v for k, v in request_headers.items() if k.lower() not in _ORIGIN_BOUND_HEADERS}
            redirects.append(following)
            current = following
    except TimeoutError:
        raise ToolError(f"request timed out after {settings.http_timeout_s:g} s") from None
    except http.client.HTTPException as exc:
        raise ToolError(f"bad HTTP response: {type(exc).__name__}: {shorten(str(exc), 120)}") from None
    except (ConnectionError, ssl.SSLError) as exc:
        raise ToolError(f"connection failed: {exc}") from None
