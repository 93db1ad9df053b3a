"""Decide whether a URL may be fetched: scheme, host, and every address the host resolves to.

The result, `VettedTarget`, carries the vetted IP addresses; the HTTP client connects to those
and only those (see http_client.py), so a DNS answer that changes between the check and the
connection (DNS rebinding) cannot redirect the request. Callers vet again on every redirect."""

from __future__ import annotations

import ipaddress
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from urllib.parse import urlsplit

from .base import ToolError, ToolSettings, shorten

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance metadata endpoints (AWS, GCP, Azure, Oracle, Alibaba, ECS task metadata). Refused
# even when the operator allows private hosts: they hand out cloud credentials.
CLOUD_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",
        "169.254.169.253",
        "169.254.170.2",
        "169.254.170.23",
        "100.100.100.200",
        "192.0.0.192",
        "fd00:ec2::254",
        "fd00:ec2::253",
        "fd00:ec2::23",
    )
)

# Ranges that ipaddress does not flag on every Python version, or that we refuse regardless.
_EXTRA_BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # carrier-grade NAT (RFC 6598)
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",
        "198.51.100.0/24",
        "203.0.113.0/24",  # documentation
        "198.18.0.0/15",  # benchmarking
        "240.0.0.0/4",  # reserved, and 255.255.255.255
        "::/96",  # deprecated IPv4-compatible IPv6 (::127.0.0.1)
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments, Teredo included
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local (fd00:ec2::254 lives here)
        "fec0::/10",  # deprecated site-local
        "64:ff9b:1::/48",  # local-use NAT64
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# Names that mean "this machine" or the metadata service without needing DNS to say so.
_BLOCKED_HOSTNAMES = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "metadata", "metadata.google.internal", "instance-data"}
)
_HOSTNAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")
_LOOSE_NUMERIC = re.compile(r"^[0-9a-fx.]+$")
_MAX_URL = 2048

_resolver_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="smol-tools-dns")


def address_problem(ip: IPAddress) -> str | None:
    """Why `ip` must not be contacted, or None if it is an ordinary public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        # IPv4-mapped and NAT64 addresses reach the IPv4 address inside: judge that one.
        translated = ip.ipv4_mapped or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if translated is not None:
            inner = address_problem(translated)
            return f"IPv6 address embedding {translated}, a {inner}" if inner else None
        if ip.sixtofour is not None:
            inner = address_problem(ip.sixtofour)
            if inner:
                return f"IPv6 address embedding {ip.sixtofour}, a {inner}"
    if ip in CLOUD_METADATA_ADDRESSES:
        return "cloud metadata address"
    checks = (
        (ip.is_loopback, "loopback address"),
        (ip.is_unspecified, "unspecified address"),
        (ip.is_link_local, "link-local address"),
        (ip.is_multicast, "multicast address"),
        (ip.is_private, "private address"),
        (ip.is_reserved, "reserved address"),
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "site-local address"),
    )
    for flagged, reason in checks:
        if flagged:
            return reason
    for network in _EXTRA_BLOCKED_NETWORKS:
        if ip.version == network.version and ip in network:
            return f"non-public address ({network})"
    if not ip.is_global:
        return "non-public address"
    return None


def resolve_host(host: str, port: int) -> list[str]:
    """The system resolver: every address `host` resolves to (tests monkeypatch this)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _resolve(host: str, port: int, settings: ToolSettings) -> list[str]:
    resolver = settings.resolver or resolve_host  # looked up at call time so it can be patched
    future = _resolver_pool.submit(resolver, host, port)
    try:
        return list(future.result(timeout=max(settings.http_timeout_s, 0.1)))
    except FutureTimeout:
        raise ToolError(f"DNS lookup for {host} timed out") from None
    except OSError as exc:
        raise ToolError(f"could not resolve {host}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class VettedTarget:
    url: str
    scheme: str
    host: str  # as it goes into the Host header and TLS SNI/certificate check
    port: int
    addresses: tuple[str, ...]  # connect to these only
    request_target: str  # path and query


def host_key(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_allowlisted(host: str, port: int, settings: ToolSettings) -> bool:
    allowed = {entry.strip().lower() for entry in settings.allowed_private_hosts}
    bare = f"[{host}]" if ":" in host else host
    return host_key(host, port) in allowed or host in allowed or bare in allowed


def _normalize_host(hostname: str) -> str:
    host = hostname.rstrip(".") if not hostname.startswith("[") else hostname
    if not host:
        raise ToolError("URL has an empty host")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ToolError(f"invalid international host name: {shorten(hostname, 80)}") from None
    return host.lower()


def vet_url(url: object, settings: ToolSettings) -> VettedTarget:
    """Parse and check `url`; resolve its host and refuse any non-public address."""
    if not isinstance(url, str) or not url:
        raise ToolError("url must be a non-empty string")
    if len(url) > _MAX_URL:
        raise ToolError(f"URL longer than {_MAX_URL} characters")
    # urlsplit silently drops tabs and newlines; refuse them instead of guessing.
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise ToolError(f"URL contains whitespace or control characters: {shorten(url)!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ToolError(f"invalid URL {shorten(url)}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ToolError(f"only http and https URLs are allowed, not {shorten(scheme or '(none)', 20)!r}")
    if "@" in parts.netloc:
        raise ToolError("URLs with credentials (user@host) are not allowed")
    if not parts.hostname:
        raise ToolError(f"URL has no host: {shorten(url)}")
    host = _normalize_host(parts.hostname)
    if port == 0:  # checked before the default port fills in: `port or 80` would hide it
        raise ToolError("port 0 is not allowed")
    port = port if port is not None else (443 if scheme == "https" else 80)
    allowlisted = _is_allowlisted(host, port, settings)
    where = host_key(host, port)

    literal = _parse_ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        if not _HOSTNAME.match(host):
            raise ToolError(f"invalid host name: {shorten(host, 80)}")
        if not allowlisted and (host in _BLOCKED_HOSTNAMES or host.endswith(".localhost")):
            raise ToolError(f"refusing to fetch {shorten(url)}: {host} is a local host name")
        resolved = _resolve(host, port, settings)
        if not resolved:
            raise ToolError(f"could not resolve {host}")
        addresses = [_parse_resolved(address, host) for address in resolved]

    for ip in addresses:
        problem = address_problem(ip)
        if problem is None:
            continue
        if allowlisted and ip not in CLOUD_METADATA_ADDRESSES:
            continue  # the operator allowed this host:port explicitly
        via = "" if literal is not None else f"{host} resolves to "
        raise ToolError(f"refusing to fetch {shorten(url)}: {via}{ip} is a {problem} (server-side request forgery guard)")

    path = parts.path or "/"
    request_target = path + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if scheme == "https" else 80
    netloc = where if port != default_port else (f"[{host}]" if ":" in host else host)
    normalized = f"{scheme}://{netloc}{request_target}"
    return VettedTarget(
        url=normalized,
        scheme=scheme,
        host=host,
        port=port,
        addresses=tuple(str(ip) for ip in addresses),
        request_target=request_target,
    )


def _parse_ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # inet_aton-style numbers (0x7f000001, 2130706433, 0177.0.0.1, 127.1) mean an address to
    # many resolvers but nothing to a human; refuse them rather than guess which one.
    if _LOOSE_NUMERIC.match(host):
        try:
            socket.inet_aton(host)
        except OSError:
            return None
        raise ToolError(f"ambiguous numeric host {host!r}; write IPv4 addresses as four decimal numbers")
    return None


def _parse_resolved(address: str, host: str) -> IPAddress:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        raise ToolError(f"resolver returned an invalid address for {host}: {shorten(address, 60)}") from None
