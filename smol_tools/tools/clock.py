"""get_current_datetime: the real time (settings.clock, injectable for tests) in an IANA zone."""

from __future__ import annotations

import re
from datetime import timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .base import Tool, ToolError, ToolResult, ToolSession, json_result, shorten

# IANA names: letters, digits, '_', '+', '-', with '/' between parts (no '..', no leading '/').
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,3}$")
_UTC_ALIASES = {"utc", "z", "gmt", "etc/utc", "zulu"}


def zone_for(name: str) -> ZoneInfo:
    if name.strip().lower() in _UTC_ALIASES:
        return ZoneInfo("UTC")
    if not _ZONE_NAME.match(name):
        raise ToolError(f"invalid time zone name {shorten(name, 60)!r}; use an IANA name like 'Europe/Paris'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ToolError(f"unknown time zone {name!r}; use an IANA name like 'Europe/Paris' or 'Asia/Tokyo'") from None


def get_current_datetime(arguments: dict, session: ToolSession) -> ToolResult:
    zone = zone_for(arguments.get("timezone", "UTC"))
    now = session.settings.clock()
    if now.tzinfo is None:  # a naive clock is taken to be UTC
        now = now.replace(tzinfo=timezone.utc)
    local = now.astimezone(zone)
    return json_result(
        {
            "timezone": zone.key,
            "datetime": local.isoformat(timespec="seconds"),
            "date": local.date().isoformat(),
            "time": local.strftime("%H:%M:%S"),
            "weekday": local.strftime("%A"),
            "utc_offset": local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:],
        }
    )


GET_CURRENT_DATETIME = Tool(
    name="get_current_datetime",
    description="Get the current date, time and weekday in a time zone (IANA name; default UTC).",
    parameters={
        "type": "object",
        "properties": {
            "timezone": {
                "type": "string",
                "description": "IANA time zone, e.g. 'Europe/Paris', 'America/New_York' or 'UTC'.",
                "minLength": 1,
                "maxLength": 64,
            },
        },
        "additionalProperties": False,
    },
    run=get_current_datetime,
)
