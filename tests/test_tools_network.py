"""get_webpage and http_request against a local http.server, and the SSRF guard around them.

There is no internet here: a test server on 127.0.0.1 is reachable only because each test
that uses it allows its exact host:port through ToolSettings.allowed_private_hosts, and the
same URLs are shown to be refused without that setting."""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from smol_tools.tools import ToolRegistry, ToolResult, ToolSession, ToolSettings, default_registry
from smol_tools.tools import netguard
from smol_tools.tools.netguard import address_problem

PAGE = """<!doctype html><html><head><title>Local &amp; test page</title>
<style>body { color: red }</style><script>var secret = "do not show";</script></head>
<body><h1>Hello</h1><p>First paragraph with <b>bold</b> text.</p>
<ul><li>one</li><li>two</li></ul><noscript>enable js</noscript><svg><text>vector</text></svg>
<p>Last&nbsp;line</p></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits: list[str] = []

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8", extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> None:
        type(self).hits.append(self.path)
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if url.path == "/page":
            self._send(200, PAGE.encode(), "text/html; charset=utf-8")
        elif url.path == "/redirect":
            self._send(int(query.get("status", ["302"])[0]), b"", extra={"Location": query["to"][0]})
        elif url.path == "/loop":
            self._send(302, b"", extra={"Location": "/loop"})
        elif url.path == "/big":
            self._send(200, b"a" * 300_000)
        elif url.path == "/slow":
            time.sleep(2)
            try:
                self._send(200, b"late")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the tool under test gave up first, as it should: nothing left to answer
        elif url.path == "/binary":
            self._send(200, bytes(range(256)), "image/png")
        elif url.path == "/missing":
            self._send(404, b"<html><title>Not here</title><body>nothing</body></html>", "text/html")
        elif url.path == "/echo":
            echo = {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body.decode()}
            self._send(200, json.dumps(echo).encode(), "application/json", extra={"X-Internal": "hidden", "ETag": '"v1"'})
        else:
            self._send(404, b"no route")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _route


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    return default_registry()


def make_session(tmp_path, **settings) -> ToolSession:
    return ToolSession.create(root=tmp_path, settings=ToolSettings(**settings))


@pytest.fixture
def allowed(tmp_path, server) -> ToolSession:
    """A session that may reach the local test server (and nothing else private)."""
    return make_session(tmp_path, allowed_private_hosts=frozenset({server}), http_timeout_s=5)


@pytest.fixture
def plain(tmp_path) -> ToolSession:
    return make_session(tmp_path, http_timeout_s=5)


def error_of(result: ToolResult) -> str:
    assert result.is_error, result.content
    return json.loads(result.content)["error"]


# --- the guard on its own ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
        "169.254.1.1", "100.64.0.1", "100.127.255.254", "0.0.0.0", "224.0.0.1", "239.255.255.250",
        "255.255.255.255", "240.0.0.1", "192.0.2.1", "198.18.0.1", "100.100.100.200",
        "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "fec0::1", "2001:db8::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1",
        "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2002:a00:1::1", "2001::1",
    ],
)  # fmt: skip
def test_non_public_addresses_are_flagged(address):
    assert address_problem(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"])
def test_public_addresses_pass(address):
    assert address_problem(ipaddress.ip_address(address)) is None


# --- refused before any connection ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://127.0.0.1:8080/admin", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://192.168.0.1/router", "private"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
        ("http://100.100.100.200/", "cloud metadata"),
        ("http://[::1]/", "loopback"),
        ("http://[::]/", "unspecified"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::ffff:127.0.0.1]/", "embedding 127.0.0.1"),
        ("http://[::ffff:7f00:1]/", "embedding 127.0.0.1"),
        ("http://[::ffff:169.254.169.254]/", "embedding 169.254.169.254"),
        ("http://[fe80::1]/", "link-local"),
        ("http://100.64.0.1/", "100.64.0.0/10"),
        ("http://224.0.0.1/", "multicast"),
        ("http://0x7f000001/", "ambiguous numeric host"),
        ("http://2130706433/", "ambiguous numeric host"),
        ("http://0177.0.0.1/", "ambiguous numeric host"),
        ("http://127.1/", "ambiguous numeric host"),
        ("http://0x7f.0.0.1/", "ambiguous numeric host"),
        ("http://localhost/", "local host name"),
        ("http://localhost./", "local host name"),
        ("http://LOCALHOST:8000/", "local host name"),
        ("http://app.localhost/", "local host name"),
        ("http://metadata.google.internal/computeMetadata/v1/", "local host name"),
        ("file:///etc/passwd", "only http and https"),
        ("ftp://example.com/file", "only http and https"),
        ("gopher://127.0.0.1:25/", "only http and https"),
        ("javascript:alert(1)", "only http and https"),
        ("http://user:pass@example.com/", "credentials"),
        ("http://example.com@127.0.0.1/", "credentials"),
        ("http://exa mple.com/", "whitespace"),
        ("http://example.com/\r\nHost: evil", "whitespace"),
        ("http:///path", "no host"),
        ("http://example.com:99999/", "invalid URL"),
        ("http://[::1/", "invalid URL"),
    ],
)
def test_forbidden_urls_are_refused(registry, plain, url, reason):
    for name in ("get_webpage", "http_request"):
        started = time.monotonic()
        assert reason in error_of(registry.execute(name, {"url": url}, plain))
        assert time.monotonic() - started < 1


def test_local_server_is_refused_without_the_operator_setting(registry, plain, server):
    before = len(_Handler.hits)
    for name in ("get_webpage", "http_request"):
        message = error_of(registry.execute(name, {"url": f"http://{server}/page"}, plain))
        assert "127.0.0.1 is a loopback address" in message
    assert len(_Handler.hits) == before  # never contacted


def test_allowlist_is_exact_host_and_port(registry, tmp_path, server):
    other_port = make_session(tmp_path, allowed_private_hosts=frozenset({"127.0.0.1:1"}))
    assert "loopback" in error_of(registry.execute("get_webpage", {"url": f"http://{server}/page"}, other_port))


def test_cloud_metadata_stays_refused_even_when_allowlisted(registry, tmp_path):
    session = make_session(tmp_path, allowed_private_hosts=frozenset({"169.254.169.254", "169.254.169.254:80"}))
    assert "cloud metadata" in error_of(registry.execute("http_request", {"url": "http://169.254.169.254/latest/"}, session))


def test_network_switch(registry, tmp_path, server):
    session = make_session(tmp_path, allow_network=False, allowed_private_hosts=frozenset({server}))
    assert "network access is disabled" in error_of(registry.execute("get_webpage", {"url": f"http://{server}/page"}, session))


# --- DNS --------------------------------------------------------------------------------------


def fake_dns(table: dict[str, list[str]], calls: list[str] | None = None):
    def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise OSError(-2, "Name or service not known")
        return table[host]

    return resolve


@pytest.mark.parametrize(
    "answers",
    [["10.1.2.3"], ["127.0.0.1"], ["169.254.169.254"], ["::1"], ["::ffff:192.168.1.1"], ["93.184.216.34", "10.0.0.7"]],
)
def test_names_resolving_to_private_addresses_are_refused(registry, plain, monkeypatch, answers):
    calls: list[str] = []
    monkeypatch.setattr(netguard, "resolve_host", fake_dns({"intranet.example.com": answers}, calls))
    message = error_of(registry.execute("get_webpage", {"url": "https://intranet.example.com/"}, plain))
    assert "intranet.example.com resolves to" in message and "forgery" in message
    assert calls == ["intranet.example.com"]


def test_unresolvable_names_fail_cleanly(registry, plain, monkeypatch):
    monkeypatch.setattr(netguard, "resolve_host", fake_dns({}))
    assert "could not resolve nowhere.example" in error_of(registry.execute("http_request", {"url": "http://nowhere.example/"}, plain))


def test_connection_is_pinned_to_the_vetted_address(registry, tmp_path, server):
    """The name is resolved once per hop; the socket goes to that address; Host keeps the name."""
    port = server.split(":")[1]
    calls: list[str] = []
    session = make_session(
        tmp_path,
        allowed_private_hosts=frozenset({f"pinned.test:{port}"}),
        resolver=fake_dns({"pinned.test": ["127.0.0.1"]}, calls),
    )
    result = registry.execute("http_request", {"url": f"http://pinned.test:{port}/echo"}, session)
    assert not result.is_error, result.content
    echoed = json.loads(json.loads(result.content)["body"])
    assert echoed["headers"]["Host"] == f"pinned.test:{port}"
    assert calls == ["pinned.test"]


def test_dns_rebinding_cannot_swap_the_address_after_the_check(registry, plain, monkeypatch, server):
    """A name that answers a public address to the check and loopback to everyone after (a
    rebinding attacker's DNS with TTL 0): the one connection goes to the checked address, the
    name is resolved once, and the local server never sees a request."""
    port = int(server.split(":")[1])
    answers = iter([["93.184.216.34"], ["127.0.0.1"], ["127.0.0.1"]])
    calls: list[str] = []

    def rebinding_dns(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    connected: list[tuple] = []

    def no_internet_here(address, *args, **kwargs):  # record where the socket would go; refuse
        connected.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(netguard, "resolve_host", rebinding_dns)
    monkeypatch.setattr(socket, "create_connection", no_internet_here)
    message = error_of(registry.execute("http_request", {"url": f"http://rebind.example:{port}/echo"}, plain))
    assert "could not connect to rebind.example" in message
    assert calls == ["rebind.example"] and connected == [("93.184.216.34", port)]


# --- redirects --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/", "cloud metadata"),
        ("http://10.0.0.1/", "private"),
        ("http://[::1]:{port}/page", "loopback"),
        ("http://[::ffff:127.0.0.1]:{port}/page", "embedding 127.0.0.1"),
        ("http://127.0.0.1:1/page", "loopback"),  # same host, a port the operator did not allow
        ("http://localhost:{port}/page", "local host name"),
        ("http://0x7f000001:{port}/page", "ambiguous numeric host"),
        ("file:///etc/passwd", "only http and https"),
        ("http://sneaky.example/", "sneaky.example resolves to 10.9.8.7"),
    ],
)
def test_redirects_to_forbidden_targets_are_refused(registry, allowed, server, monkeypatch, target, reason):
    monkeypatch.setattr(netguard, "resolve_host", fake_dns({"sneaky.example": ["10.9.8.7"]}))
    location = target.format(port=server.split(":")[1])
    for status in (301, 302, 303, 307, 308):
        url = f"http://{server}/redirect?status={status}&to={location}"
        for name in ("get_webpage", "http_request"):
            assert reason in error_of(registry.execute(name, {"url": url}, allowed))


def test_redirects_inside_the_allowlist_are_followed(registry, allowed, server):
    result = registry.execute("get_webpage", {"url": f"http://{server}/redirect?to=/page"}, allowed)
    data = json.loads(result.content)
    assert data["url"] == f"http://{server}/page" and data["redirects"] == [f"http://{server}/page"]
    assert data["title"] == "Local & test page"


def test_redirect_limit(registry, allowed, server):
    assert "too many redirects (more than 5)" in error_of(registry.execute("http_request", {"url": f"http://{server}/loop"}, allowed))
    manual = json.loads(registry.execute("http_request", {"url": f"http://{server}/loop", "follow_redirects": False}, allowed).content)
    assert manual["status"] == 302 and manual["headers"]["location"] == "/loop"


def test_303_turns_post_into_get(registry, allowed, server):
    url = f"http://{server}/redirect?status=303&to=/echo"
    result = registry.execute("http_request", {"url": url, "method": "POST", "body": "payload"}, allowed)
    echoed = json.loads(json.loads(result.content)["body"])
    assert echoed["method"] == "GET" and echoed["body"] == ""
    url = f"http://{server}/redirect?status=307&to=/echo"
    echoed = json.loads(json.loads(registry.execute("http_request", {"url": url, "method": "POST", "body": "kept"}, allowed).content)["body"])
    assert echoed["method"] == "POST" and echoed["body"] == "kept"


# --- normal use -------------------------------------------------------------------------------


def test_get_webpage_returns_readable_text(registry, allowed, server):
    result = registry.execute("get_webpage", {"url": f"http://{server}/page"}, allowed)
    assert not result.is_error
    data = json.loads(result.content)
    assert data["status"] == 200 and data["title"] == "Local & test page"
    assert data["text"] == "Hello\n\nFirst paragraph with bold text.\n\n- one\n- two\n\nLast line"
    for hidden in ("secret", "color", "enable js", "vector", "<"):
        assert hidden not in data["text"]


def test_get_webpage_limits(registry, allowed, server):
    clipped = json.loads(registry.execute("get_webpage", {"url": f"http://{server}/big", "max_chars": 500}, allowed).content)
    assert clipped["truncated"] and len(clipped["text"]) < 600
    assert "not a text page (image/png)" in error_of(registry.execute("get_webpage", {"url": f"http://{server}/binary"}, allowed))
    missing = registry.execute("get_webpage", {"url": f"http://{server}/missing"}, allowed)
    assert error_of(missing) == "HTTP 404 Not Found" and json.loads(missing.content)["text"] == "nothing"


def test_response_size_cap(registry, tmp_path, server):
    session = make_session(tmp_path, allowed_private_hosts=frozenset({server}), max_response_bytes=50_000)
    data = json.loads(registry.execute("http_request", {"url": f"http://{server}/big"}, session).content)
    assert data["truncated"] is True and data["status"] == 200


def test_timeout(registry, tmp_path, server):
    session = make_session(tmp_path, allowed_private_hosts=frozenset({server}), http_timeout_s=0.5)
    started = time.monotonic()
    assert "timed out after 0.5 s" in error_of(registry.execute("http_request", {"url": f"http://{server}/slow"}, session))
    assert time.monotonic() - started < 1.5


def test_http_request_methods_headers_and_body(registry, allowed, server):
    result = registry.execute(
        "http_request",
        {"url": f"http://{server}/echo?x=1", "method": "PUT", "headers": {"Content-Type": "application/json", "X-Demo": "yes"}, "body": '{"a": 1}'},
        allowed,
    )
    data = json.loads(result.content)
    assert data["status"] == 200 and data["headers"]["content-type"] == "application/json"
    assert data["headers"]["etag"] == '"v1"' and "x-internal" not in data["headers"]  # selected headers only
    echoed = json.loads(data["body"])
    assert (echoed["method"], echoed["path"], echoed["body"]) == ("PUT", "/echo?x=1", '{"a": 1}')
    assert echoed["headers"]["X-Demo"] == "yes" and echoed["headers"]["Content-Length"] == "8"
    head = json.loads(registry.execute("http_request", {"url": f"http://{server}/echo", "method": "HEAD"}, allowed).content)
    assert head["status"] == 200 and head["body"] == ""
    binary = json.loads(registry.execute("http_request", {"url": f"http://{server}/binary"}, allowed).content)
    assert binary["body"] is None and "binary body (256 bytes, image/png)" in binary["body_note"]


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"headers": {"Host": "evil.example"}}, "cannot be overridden"),
        ({"headers": {"Transfer-Encoding": "chunked"}}, "cannot be overridden"),
        ({"headers": {"X-Evil": "a\r\nInjected: 1"}}, "invalid value for header"),
        ({"headers": {"Bad Name": "x"}}, "invalid header name"),
        ({"body": "x"}, "a GET request cannot have a body"),
        ({"method": "POST", "body": "x" * 2000}, "the limit is 1000"),
        ({"method": "TRACE"}, "is not one of"),
    ],
)
def test_http_request_refuses_bad_requests(registry, tmp_path, server, arguments, reason):
    session = make_session(tmp_path, allowed_private_hosts=frozenset({server}), max_request_body_bytes=1000)
    before = len(_Handler.hits)
    assert reason in error_of(registry.execute("http_request", {"url": f"http://{server}/echo", **arguments}, session))
    assert len(_Handler.hits) == before


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a test certificate")
def test_https_uses_sni_and_verifies_certificates(registry, tmp_path):
    """TLS goes over the pinned socket with the URL's host name in SNI, and an untrusted
    certificate is refused (verification is never switched off)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=secure.test"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server_names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_one() -> None:
        connection, _ = listener.accept()
        try:
            context.wrap_socket(connection, server_side=True).close()
        except (ssl.SSLError, OSError):
            pass  # the client hangs up when it rejects our certificate

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    session = make_session(
        tmp_path,
        allowed_private_hosts=frozenset({f"secure.test:{port}"}),
        resolver=fake_dns({"secure.test": ["127.0.0.1"]}),
        http_timeout_s=5,
    )
    message = error_of(registry.execute("get_webpage", {"url": f"https://secure.test:{port}/"}, session))
    thread.join(timeout=5)
    listener.close()
    assert "TLS error" in message and "CERTIFICATE_VERIFY_FAILED" in message
    assert server_names == ["secure.test"]


# --- real servers: HTTP/1.0, Connection: close, keep-alive, chunked, cut, dripping (issue 15 §2-3)


@pytest.fixture(scope="module")
def raw_server():
    from tests.fixtures.raw_http import raw_http_server

    with raw_http_server() as httpd:
        yield httpd


@pytest.fixture
def raw(tmp_path, raw_server) -> ToolSession:
    from tests.fixtures.raw_http import address

    return make_session(tmp_path, allowed_private_hosts=frozenset({address(raw_server)}), http_timeout_s=5)


def raw_url(raw_server, path: str) -> str:
    from tests.fixtures.raw_http import address

    return f"http://{address(raw_server)}{path}"


@pytest.mark.parametrize(
    ("path", "body"),
    [("/close", "hello"), ("/keepalive", "hello"), ("/chunked", "hello world"), ("/chunked-close", "hello world")],
)
def test_http11_with_and_without_keep_alive_and_chunked(registry, raw, raw_server, path, body):
    started = time.monotonic()
    result = registry.execute("http_request", {"url": raw_url(raw_server, path)}, raw)
    assert not result.is_error, result.content
    data = json.loads(result.content)
    assert (data["status"], data["body"], data["truncated"]) == (200, body, False)
    assert time.monotonic() - started < 2  # a kept-open connection is not waited on


def test_http10_server(registry, raw, raw_server):
    page = registry.execute("get_webpage", {"url": raw_url(raw_server, "/http10")}, raw)
    assert not page.is_error, page.content
    data = json.loads(page.content)
    assert data["title"] == "Old server" and data["text"] == "one point oh"
    request = registry.execute("http_request", {"url": raw_url(raw_server, "/http10")}, raw)
    assert json.loads(request.content)["body"].endswith("<p>one point oh</p></body></html>")


@pytest.mark.parametrize("path", ["/cut", "/cut-chunked"])
def test_a_server_closing_mid_body_is_an_error_not_a_shorter_page(registry, raw, raw_server, path):
    for name in ("http_request", "get_webpage"):
        message = error_of(registry.execute(name, {"url": raw_url(raw_server, path)}, raw))
        assert "closed the connection in the middle of the body" in message, message


@pytest.mark.parametrize("path", ["/drip", "/drip-headers"])
def test_one_deadline_for_connect_headers_and_body(registry, tmp_path, raw_server, path):
    """One byte every 0.25 s: each read finishes well inside any per-read timeout, so only an
    overall deadline stops it (the old client took 25 s here)."""
    from tests.fixtures.raw_http import address

    session = make_session(tmp_path, allowed_private_hosts=frozenset({address(raw_server)}), http_timeout_s=1)
    started = time.monotonic()
    message = error_of(registry.execute("http_request", {"url": raw_url(raw_server, path)}, session))
    elapsed = time.monotonic() - started
    assert "timed out after 1 s" in message
    assert elapsed < 2.5, f"a 1 s request took {elapsed:.1f} s"


def test_redirects_over_http10_are_followed_and_rechecked(registry, raw, raw_server):
    data = json.loads(registry.execute("get_webpage", {"url": raw_url(raw_server, "/redirect?to=/page")}, raw).content)
    assert data["title"] == "Old server" and data["redirects"] == [raw_url(raw_server, "/page")]
    for target, reason in (("http://127.0.0.1:1/", "127.0.0.1 is a loopback address"),
                           ("http://169.254.169.254/latest/", "cloud metadata address"),
                           ("http://[::1]/", "::1 is a loopback address")):
        message = error_of(registry.execute("http_request", {"url": raw_url(raw_server, f"/redirect?to={target}")}, raw))
        assert f"refusing to fetch {target}" in message and reason in message


CREDENTIAL_HEADERS = {
    "Authorization": "Bearer a", "Cookie": "session=b", "X-Api-Key": "c", "X-Auth-Token": "d",
    "Api-Key": "e", "X-Amz-Security-Token": "f", "X-Csrf-Token": "g", "X-Vendor-Secret": "h",
    "Private-Token": "i", "X-Goog-Api-Key": "j", "Ocp-Apim-Subscription-Key": "k", "X-Session": "l",
}  # fmt: skip


def test_caller_headers_do_not_follow_a_redirect_to_another_origin(registry, tmp_path, raw_server, server):
    """Strip by policy (an allowlist of descriptive headers), not by a list of credential names."""
    from tests.fixtures.raw_http import address

    session = make_session(tmp_path, allowed_private_hosts=frozenset({address(raw_server), server}), http_timeout_s=5)
    headers = {**CREDENTIAL_HEADERS, "Accept-Language": "fr", "Content-Type": "application/json"}
    other = f"http://{server}/echo"
    result = registry.execute("http_request", {"url": raw_url(raw_server, f"/redirect?to={other}"), "headers": headers}, session)
    received = json.loads(json.loads(result.content)["body"])["headers"]
    leaked = sorted(set(CREDENTIAL_HEADERS) & set(received))
    assert not leaked, f"forwarded to another origin: {leaked}"
    assert received["Accept-Language"] == "fr" and received["Content-Type"] == "application/json"
    # The same origin keeps them: that is where the caller meant to send them.
    same = registry.execute("http_request", {"url": raw_url(raw_server, "/redirect?to=/echo"), "headers": headers}, session)
    kept = json.loads(json.loads(same.content)["body"])["headers"]
    assert all(kept.get(name) == value for name, value in CREDENTIAL_HEADERS.items())


@pytest.mark.parametrize("url", ["http://127.0.0.1:0/", "http://[::1]:0/", "https://public.example:0/", "http://public.example:00/"])
def test_port_zero_is_refused(registry, tmp_path, url):
    session = make_session(tmp_path, allowed_private_hosts=frozenset({"127.0.0.1", "[::1]"}),
                           resolver=fake_dns({"public.example": ["93.184.216.34"]}), http_timeout_s=2)
    assert "port 0 is not allowed" in error_of(registry.execute("http_request", {"url": url}, session))
