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
import io
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
# Only these request headers follow a redirect to another origin. Any other header the caller
# set may carry a credential (Authorization, Cookie, X-Api-Key, X-Auth-Token, a vendor's own
# name...), and no list of credential names can be complete, so the policy is an allowlist of
# headers that describe the request rather than the requester.
_CROSS_ORIGIN_HEADERS = frozenset(
    {"user-agent", "accept", "accept-language", "content-type", "content-language", "cache-control",
     "pragma", "dnt", "connection"}
)  # fmt: skip


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


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


class _DeadlineReader(io.RawIOBase):
    """The response side of a socket where every receive gets only the time left before the
    request's deadline, so headers and body together cannot outlast it, however slowly the
    server drips (a plain socket timeout restarts at every byte)."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        self._sock.settimeout(_remaining(self._deadline))
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """What http.client sees as its socket: sends and reads bounded by the deadline.

    http.client drops its reference to the socket when the response says the connection will
    close (HTTP/1.0, `Connection: close`); the real socket is therefore owned and closed by
    `_send_once`, never by http.client, and reading the body does not depend on it."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str = "rb", *args, **kwargs) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def sendall(self, data) -> None:
        self._sock.settimeout(_remaining(self._deadline))  # one timeout for the whole sendall
        self._sock.sendall(data)

    def close(self) -> None:
        pass  # see the class comment

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to `host` (Host header) over a socket connected to `pinned_ip`, every step inside
    one deadline (connect, TLS handshake, request, headers, body)."""

    def __init__(self, host: str, port: int, pinned_ip: str, deadline: float) -> None:
        super().__init__(host, port, timeout=_remaining(deadline))
        self.pinned_ip = pinned_ip
        self.deadline = deadline
        self.raw_sock: socket.socket | None = None

    def _open(self) -> socket.socket:
        sock = socket.create_connection((self.pinned_ip, self.port), _remaining(self.deadline))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def connect(self) -> None:
        self.raw_sock = self._open()
        self.sock = _DeadlineSocket(self.raw_sock, self.deadline)

    def close_all(self) -> None:
        self.close()
        if self.raw_sock is not None:
            self.raw_sock.close()


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """HTTPS: TLS with SNI and certificate verification for `host`, on the pinned socket."""

    default_port = http.client.HTTPS_PORT

    def __init__(self, host: str, port: int, pinned_ip: str, deadline: float) -> None:
        super().__init__(host, port, pinned_ip, deadline)
        self._tls = ssl.create_default_context()

    def _open(self) -> socket.socket:
        plain = super()._open()
        try:
            plain.settimeout(_remaining(self.deadline))  # the handshake as a whole gets what is left
            return self._tls.wrap_socket(plain, server_hostname=self.host)
        except BaseException:
            plain.close()
            raise


def _connect(target: VettedTarget, deadline: float) -> _PinnedHTTPConnection:
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    last_error: Exception | None = None
    for ip in target.addresses:
        connection = connection_class(target.host, target.port, ip, deadline)
        try:
            connection.connect()
            return connection
        except ssl.SSLError as exc:
            connection.close_all()
            raise ToolError(f"TLS error with {target.host}: {exc.reason or exc}") from None
        except OSError as exc:
            connection.close_all()
            if isinstance(exc, TimeoutError):
                raise
            last_error = exc
    raise ToolError(f"could not connect to {target.host}:{target.port}: {getattr(last_error, 'strerror', None) or last_error}")


def _read_body(response: http.client.HTTPResponse, max_bytes: int) -> bytes:
    """Up to max_bytes + 1 bytes of the body (one more than the cap tells us it was cut).

    A body that ends before its declared length is an error, not a shorter page: http.client's
    read(amt) returns what it got without a word when a Content-Length body stops early."""
    chunks: list[bytes] = []
    received = 0
    while received <= max_bytes:
        try:
            chunk = response.read(min(_CHUNK, max_bytes + 1 - received))
        except http.client.IncompleteRead as exc:
            raise ToolError(
                f"the server closed the connection in the middle of the body (after {received + len(exc.partial)} bytes)"
            ) from None
        if not chunk:
            if response.length:  # Content-Length bytes still owed
                raise ToolError(
                    f"the server closed the connection in the middle of the body "
                    f"(after {received} bytes, {received + response.length} announced)"
                )
            break
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


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
        response = connection.getresponse()
        try:
            status, reason = response.status, response.reason
            response_headers = [(key, shorten(value, 1000)) for key, value in response.getheaders()]
            payload = _read_body(response, max_bytes) if read_body and method != "HEAD" else b""
        finally:
            response.close()
        return HttpResponse(
            url=target.url,
            status=status,
            reason=reason,
            headers=response_headers,
            body=payload[:max_bytes],
            truncated=len(payload) > max_bytes,
        )
    finally:
        connection.close_all()


def cross_origin_headers(headers: dict[str, str]) -> dict[str, str]:
    """The headers that may go on to another origin (see _CROSS_ORIGIN_HEADERS)."""
    return {name: value for name, value in headers.items() if name.lower() in _CROSS_ORIGIN_HEADERS}


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
                request_headers = cross_origin_headers(request_headers)
            redirects.append(following)
            current = following
    except TimeoutError:
        raise ToolError(f"request timed out after {settings.http_timeout_s:g} s") from None
    except http.client.HTTPException as exc:
        raise ToolError(f"bad HTTP response: {type(exc).__name__}: {shorten(str(exc), 120)}") from None
    except (ConnectionError, ssl.SSLError) as exc:
        raise ToolError(f"connection failed: {exc}") from None
