"""send_email and create_calendar_event: recorded in the session (outbox, calendar) only.

Nothing leaves the machine; every result says so, and the UI shows the session's lists."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta

from .base import Tool, ToolError, ToolResult, ToolSession, json_result, shorten

# Full matches on explicit allowed sets. A pattern ending in "$" is not one: in Python (and so
# in jsonschema) "$" also matches before a final "\n", so "a@b.example\n" passed.
# "(?![\s\S])" (nothing follows) is the end of the string in both Python and ECMA regexes.
_EMAIL_CORE = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
EMAIL_PATTERN = rf"^{_EMAIL_CORE}(?![\s\S])"
_EMAIL_RE = re.compile(_EMAIL_CORE)
# The schema's portable form of the single-line rule (no line breaks, controls or format
# characters); `_single_line` enforces the exact allowed set in code.
_SINGLE_LINE = "^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]*(?![\\s\\S])"
# One line of text: letters, marks, numbers, punctuation, symbols, spaces (Zs), and the two
# joiners that emoji and some scripts need. Everything else (controls such as NUL, ESC, VT,
# NEL; U+2028/U+2029; bidi overrides and other format characters; surrogates, private use,
# unassigned code points) is refused.
_LINE_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No",
                              "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs"})
_JOINERS = frozenset({"\u200c", "\u200d"})
_MAX_EVENT_DAYS = 31


def _single_line(value: str, field: str) -> str:
    for position, char in enumerate(value):
        if unicodedata.category(char) not in _LINE_CATEGORIES and char not in _JOINERS:
            what = unicodedata.name(char, "a control or unassigned character")
            raise ToolError(f"{field} must be one line of plain text; it contains U+{ord(char):04X} ({what}) "
                            f"at position {position}: remove it")
    return value


def _addresses(values: list, field: str) -> list[str]:
    for value in values:
        if not isinstance(value, str) or not _EMAIL_RE.fullmatch(value):
            shown = shorten(value if isinstance(value, str) else repr(value), 60)
            raise ToolError(f"{field}: {shown!r} is not an email address like name@example.com")
    return list(values)


def _check_capacity(items: list[dict], session: ToolSession, what: str) -> None:
    if len(items) >= session.settings.max_outbox_items:
        raise ToolError(f"the session's {what} is full ({session.settings.max_outbox_items} items)")


def send_email(arguments: dict, session: ToolSession) -> ToolResult:
    to = _addresses(arguments["to"], "to")
    cc = _addresses(arguments.get("cc", []), "cc")
    subject = _single_line(arguments["subject"], "subject")
    with session.lock:
        _check_capacity(session.outbox, session, "outbox")
        message = {
            "id": f"msg-{len(session.outbox) + 1}",
            "to": to,
            "cc": cc,
            "subject": subject,
            "body": arguments["body"],
            "created_at": session.settings.clock().isoformat(timespec="seconds"),
            "delivered": False,
        }
        session.outbox.append(message)
    return json_result(
        {
            "status": "stored",
            "id": message["id"],
            "to": message["to"],
            "subject": message["subject"],
            "delivered": False,
            "note": "Demo: the email was put in this session's outbox; nothing was sent.",
        }
    )


def _parse_when(value: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ToolError(f"{field} must be an ISO 8601 date-time like 2026-03-14T15:00, not {shorten(value, 40)!r}") from None
    if not 1900 <= moment.year <= 2200:
        raise ToolError(f"{field} is out of range: {value}")
    return moment


def create_calendar_event(arguments: dict, session: ToolSession) -> ToolResult:
    title = _single_line(arguments["title"], "title")
    location = _single_line(arguments.get("location", ""), "location")
    attendees = _addresses(arguments.get("attendees", []), "attendees")
    start = _parse_when(arguments["start"], "start")
    if "end" in arguments:
        end = _parse_when(arguments["end"], "end")
        if (end.tzinfo is None) != (start.tzinfo is None):
            raise ToolError("start and end must both have a UTC offset, or both have none")
    else:
        end = start + timedelta(minutes=arguments.get("duration_minutes", 60))
    if end <= start:
        raise ToolError("the event must end after it starts")
    if end - start > timedelta(days=_MAX_EVENT_DAYS):
        raise ToolError(f"events longer than {_MAX_EVENT_DAYS} days are not supported")
    with session.lock:
        _check_capacity(session.calendar, session, "calendar")
        event = {
            "id": f"evt-{len(session.calendar) + 1}",
            "title": title,
            "start": start.isoformat(timespec="minutes"),
            "end": end.isoformat(timespec="minutes"),
            "location": location,
            "description": arguments.get("description", ""),
            "attendees": attendees,
        }
        session.calendar.append(event)
    return json_result(
        {
            "status": "created",
            **{key: event[key] for key in ("id", "title", "start", "end")},
            "note": "Demo: the event was added to this session's calendar only; no invitations were sent.",
        }
    )


def _address_list(description: str, max_items: int) -> dict:
    return {
        "type": "array",
        "description": description,
        "items": {"type": "string", "maxLength": 254, "pattern": EMAIL_PATTERN},
        "maxItems": max_items,
    }


SEND_EMAIL = Tool(
    name="send_email",
    description=(
        "Send an email on the user's behalf. Demo: the message is stored in the session's "
        "outbox (shown in the app) and is not actually delivered."
    ),
    parameters={
        "type": "object",
        "properties": {
            "to": {**_address_list("Recipient email addresses.", 10), "minItems": 1},
            "subject": {"type": "string", "description": "Subject line.", "maxLength": 200, "pattern": _SINGLE_LINE},
            "body": {"type": "string", "description": "Plain-text message body.", "maxLength": 10000},
            "cc": _address_list("Carbon-copy addresses (optional).", 10),
        },
        "required": ["to", "subject", "body"],
        "additionalProperties": False,
    },
    run=send_email,
    simulated=True,
)

CREATE_CALENDAR_EVENT = Tool(
    name="create_calendar_event",
    description=(
        "Add an event to the user's calendar. Give start as ISO 8601 (e.g. 2026-03-14T15:00 or "
        "with an offset, 2026-03-14T15:00+01:00) and either end or duration_minutes (default 60). "
        "Demo: stored in the session's calendar; no invitations are sent."
    ),
    parameters={
        "type": "object",
        "properties": {
            "title": {"type": "string", "description": "Event title.", "minLength": 1, "maxLength": 200, "pattern": _SINGLE_LINE},
            "start": {"type": "string", "description": "Start date-time, ISO 8601.", "minLength": 10, "maxLength": 40},
            "end": {"type": "string", "description": "End date-time, ISO 8601 (optional).", "minLength": 10, "maxLength": 40},
            "duration_minutes": {
                "type": "integer",
                "description": "Length in minutes when end is not given (default 60).",
                "minimum": 1,
                "maximum": 44640,
            },
            "location": {"type": "string", "description": "Where it takes place (optional).", "maxLength": 200,
                         "pattern": _SINGLE_LINE},
            "description": {"type": "string", "description": "Notes (optional).", "maxLength": 2000},
            "attendees": _address_list("Attendee email addresses (optional).", 20),
        },
        "required": ["title", "start"],
        "additionalProperties": False,
    },
    run=create_calendar_event,
    simulated=True,
)
