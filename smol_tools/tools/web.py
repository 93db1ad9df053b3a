"""get_webpage and http_request: real HTTP, behind the SSRF guard of netguard/http_client."""

from __future__ import annotations

import re

from .base import Tool, ToolError, ToolResult, ToolSession, json_result, shorten
from .html_text import html_to_text
from .http_client import HttpResponse, fetch

_TEXTUAL_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml", "application/javascript")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_SHOWN_RESPONSE_HEADERS = (
    "content-type", "content-length", "content-language", "location", "date", "last-modified", "etag",
    "cache-control", "expires", "retry-after", "server", "www-authenticate", "allow",
)  # fmt: skip
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
# Headers the client owns: letting the model set them would allow request smuggling or
# would contradict the connection we pin.
_RESERVED_REQUEST_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade",
     "proxy-authorization", "proxy-connection", "expect"}
)  # fmt: skip
_MAX_BODY_CHARS_SHOWN = 8_000


def _is_textual(content_type: str) -> bool:
    return not content_type or content_type.startswith(_TEXTUAL_TYPES) or content_type.endswith(("+json", "+xml"))


def _clip(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[:limit] + "\n[... truncated]", True


def get_webpage(arguments: dict, session: ToolSession) -> ToolResult:
    settings = session.settings
    # Leave room for the JSON around the text so the registry never has to cut it.
    max_chars = min(int(arguments.get("max_chars", 6000)), max(200, settings.max_result_chars - 1000))
    response = fetch(
        arguments["url"],
        settings,
        headers={"Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5"},
    )
    content_type = response.content_type()
    if not _is_textual(content_type):
        raise ToolError(f"{shorten(response.url)} is not a text page ({content_type}); try http_request")
    raw = response.text()
    title, text = html_to_text(raw) if content_type.startswith(_HTML_TYPES) or not content_type else ("", raw.strip())
    text, clipped = _clip(text, max_chars)
    result = {
        "url": response.url,
        "status": response.status,
        "title": title,
        "text": text,
        "truncated": clipped or response.truncated,
    }
    if response.redirects:
        result["redirects"] = response.redirects
    if response.status >= 400:
        return json_result({"error": f"HTTP {response.status} {response.reason}", **result}, is_error=True)
    return json_result(result)


def _request_headers(raw: dict | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in (raw or {}).items():
        if not _HEADER_NAME.match(name):
            raise ToolError(f"invalid header name: {shorten(name, 60)!r}")
        if name.lower() in _RESERVED_REQUEST_HEADERS:
            raise ToolError(f"header {name} is set by the client and cannot be overridden")
        if not isinstance(value, str) or any(ch in value for ch in "\r\n\x00"):
            raise ToolError(f"invalid value for header {name}")
        headers[name] = value
    return headers


def _response_summary(response: HttpResponse) -> dict:
    shown = {}
    for name in _SHOWN_RESPONSE_HEADERS:
        value = response.header(name)
        if value is not None:
            shown[name] = value
    result: dict = {"url": response.url, "status": response.status, "reason": response.reason, "headers": shown}
    content_type = response.content_type()
    if _is_textual(content_type):
        body, clipped = _clip(response.text(), _MAX_BODY_CHARS_SHOWN)
        result["body"] = body
        result["truncated"] = clipped or response.truncated
    else:
        result["body"] = None
        result["body_note"] = f"binary body ({len(response.body)} bytes, {content_type}) not shown"
        result["truncated"] = response.truncated
    if response.redirects:
        result["redirects"] = response.redirects
    return result


def http_request(arguments: dict, session: ToolSession) -> ToolResult:
    settings = session.settings
    method = arguments.get("method", "GET")
    body_text = arguments.get("body")
    body = None
    if body_text is not None:
        if method in ("GET", "HEAD"):
            raise ToolError(f"a {method} request cannot have a body")
        body = body_text.encode("utf-8")
        if len(body) > settings.max_request_body_bytes:
            raise ToolError(f"body is {len(body)} bytes; the limit is {settings.max_request_body_bytes}")
    response = fetch(
        arguments["url"],
        settings,
        method=method,
        headers=_request_headers(arguments.get("headers")),
        body=body,
        follow_redirects=arguments.get("follow_redirects", True),
    )
    return json_result(_response_summary(response))


_URL_DESCRIPTION = "Absolute http:// or https:// URL of a public website."

GET_WEBPAGE = Tool(
    name="get_webpage",
    description=(
        "Fetch a public web page and return its title and readable text (scripts, styles and "
        "markup removed). Private, local and cloud-internal addresses are refused."
    ),
    parameters={
        "type": "object",
        "properties": {
            "url": {"type": "string", "description": _URL_DESCRIPTION, "minLength": 8, "maxLength": 2048},
            "max_chars": {
                "type": "integer",
                "description": "Most characters of text to return (default 6000).",
                "minimum": 200,
                "maximum": 10000,
            },
        },
        "required": ["url"],
        "additionalProperties": False,
    },
    run=get_webpage,
    dangerous=True,
)

HTTP_REQUEST = Tool(
    name="http_request",
    description=(
        "Send an HTTP request to a public API and return the status, main response headers and "
        "body (text bodies only, shortened when long). Private, local and cloud-internal "
        "addresses are refused."
    ),
    parameters={
        "type": "object",
        "properties": {
            "url": {"type": "string", "description": _URL_DESCRIPTION, "minLength": 8, "maxLength": 2048},
            "method": {
                "type": "string",
                "description": "HTTP method (default GET).",
                "enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"],
            },
            "headers": {
                "type": "object",
                "description": "Extra request headers, e.g. {\"Content-Type\": \"application/json\"}.",
                "maxProperties": 20,
                "additionalProperties": {"type": "string", "maxLength": 1000},
            },
            "body": {
                "type": "string",
                "description": "Request body for POST, PUT, PATCH or DELETE.",
                "maxLength": 100000,
            },
            "follow_redirects": {
                "type": "boolean",
                "description": "Follow up to 5 redirects, each checked like the first URL (default true).",
            },
        },
        "required": ["url"],
        "additionalProperties": False,
    },
    run=http_request,
    dangerous=True,
)
