"""Deterministic filler for the long cases: large tool results described by a few numbers.

A suite case may hold `{"$generate": {"kind": ..., "seed": ..., ...}}` in place of a tool
message's content. `expand` turns it into text with a seeded `random.Random` (string seeds
are hashed with SHA-512 by `random.seed`, so the text is the same on every machine and Python
version), so a 28K-token case stays a few lines of JSON and cannot drift. `needles` plant the
facts a later step depends on at fixed positions inside the filler.
"""

from __future__ import annotations

import json
import random
from typing import Any, Mapping

WORDS = (
    "the service cache latency request queue worker database index replica shard "
    "deploy release rollback config timeout retry budget quarter revenue customer order "
    "invoice shipment warehouse region team meeting report summary metric dashboard alert "
    "incident review policy draft feature user account payment refund ticket support "
    "network storage memory thread process batch job schedule window backup restore "
    "migration schema table column query plan cost estimate forecast growth trend "
    "analysis model training evaluation accuracy dataset sample result baseline target "
    "improved reduced increased stable slower faster higher lower critical minor major "
    "new old daily weekly monthly annual internal external primary secondary manual "
    "automatic pending shipped delivered cancelled approved rejected open closed"
).split()
LEVELS = ("INFO",) * 12 + ("DEBUG",) * 5 + ("WARN",) * 2 + ("ERROR",)
PATHS = ("/v1/orders", "/v1/orders/{id}", "/v1/customers", "/v1/products", "/v1/cart", "/v1/search",
         "/v1/invoices", "/health")
SERVICES = ("api", "worker", "billing", "search", "auth")


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
    return " ".join(words).capitalize() + "."


def _needles(spec: Mapping[str, Any], key: str) -> dict[int, list[str]]:
    placed: dict[int, list[str]] = {}
    for needle in spec.get("needles", []):
        placed.setdefault(int(needle[key]), []).append(str(needle["text"]))
    return placed


def _log(spec: Mapping[str, Any]) -> str:
    """Application log lines; needles are whole lines inserted before line `line`."""
    rng = random.Random(f"log:{spec['seed']}")
    needles = _needles(spec, "line")
    day = spec.get("date", "2026-03-14")
    lines = []
    for i in range(int(spec["lines"])):
        lines.extend(needles.get(i, []))
        second = i * 7 + rng.randint(0, 6)
        stamp = f"{day}T{(8 + second // 3600) % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"
        level = rng.choice(LEVELS)
        path = rng.choice(PATHS).replace("{id}", str(rng.randint(1000, 9999)))
        status = 200 if level in ("INFO", "DEBUG") else rng.choice((429, 500, 503))
        lines.append(f"{stamp} {level:<5} {rng.choice(SERVICES)} req={rng.getrandbits(32):08x} "
                     f"{rng.choice(('GET', 'GET', 'POST'))} {path} status={status} "
                     f"latency_ms={rng.randint(3, 900)}")
    lines.extend(needles.get(int(spec["lines"]), []))
    return "\n".join(lines)


def _csv(spec: Mapping[str, Any]) -> str:
    """A CSV export of orders; needles are whole rows inserted before row `row`."""
    rng = random.Random(f"csv:{spec['seed']}")
    needles = _needles(spec, "row")
    rows = ["order_id,date,customer,region,product,quantity,unit_price_usd,status"]
    for i in range(int(spec["rows"])):
        rows.extend(needles.get(i, []))
        rows.append(f"{10000 + i},2026-{rng.randint(1, 3):02d}-{rng.randint(1, 28):02d},"
                    f"C{rng.randint(100, 999)},{rng.choice(('north', 'south', 'east', 'west'))},"
                    f"{rng.choice(WORDS)}-{rng.choice(WORDS)},{rng.randint(1, 20)},"
                    f"{rng.randint(100, 50000) / 100:.2f},"
                    f"{rng.choice(('pending', 'shipped', 'delivered', 'cancelled'))}")
    rows.extend(needles.get(int(spec["rows"]), []))
    return "\n".join(rows)


def _article(spec: Mapping[str, Any]) -> str:
    """A get_webpage result: the page's readable text; needles are sentences opening paragraph `paragraph`."""
    rng = random.Random(f"article:{spec['seed']}")
    needles = _needles(spec, "paragraph")
    paragraphs = []
    for i in range(int(spec["paragraphs"])):
        body = " ".join(_sentence(rng) for _ in range(rng.randint(3, 6)))
        paragraphs.append(" ".join(needles.get(i, []) + [body]))
    page = {"url": spec["url"], "status": 200, "title": spec["title"], "text": "\n\n".join(paragraphs),
            "truncated": False}
    return json.dumps(page, ensure_ascii=False)


def _records(spec: Mapping[str, Any]) -> str:
    """An http_request result whose body is a JSON list of records; needles replace fields of record `index`."""
    rng = random.Random(f"records:{spec['seed']}")
    records = []
    for i in range(int(spec["records"])):
        records.append({"id": i + 1, "name": f"{rng.choice(WORDS)}-{rng.choice(WORDS)}",
                        "owner": f"{rng.choice(WORDS)}@example.com",
                        "status": rng.choice(("open", "closed", "pending")),
                        "score": rng.randint(0, 100), "note": _sentence(rng)})
    for needle in spec.get("needles", []):
        records[int(needle["index"])].update(needle["fields"])
    body = json.dumps(records, ensure_ascii=False)
    response = {"url": spec["url"], "status": 200, "reason": "OK",
                "headers": {"content-type": "application/json"}, "body": body, "truncated": False}
    return json.dumps(response, ensure_ascii=False)


def _text(spec: Mapping[str, Any]) -> str:
    """A plain text document (read_file); needles are sentences opening paragraph `paragraph`."""
    rng = random.Random(f"text:{spec['seed']}")
    needles = _needles(spec, "paragraph")
    paragraphs = [spec["title"]] if spec.get("title") else []
    for i in range(int(spec["paragraphs"])):
        body = " ".join(_sentence(rng) for _ in range(rng.randint(3, 6)))
        paragraphs.append(" ".join(needles.get(i, []) + [body]))
    return "\n\n".join(paragraphs)


KINDS = {"log": _log, "csv": _csv, "article": _article, "records": _records, "text": _text}


def is_generated(content: Any) -> bool:
    return isinstance(content, Mapping) and set(content) == {"$generate"}


def expand(content: Any) -> str:
    """The text of a tool message's content: itself, or the filler its `$generate` spec describes."""
    if not is_generated(content):
        return content
    spec = content["$generate"]
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown $generate kind {kind!r}; known: {', '.join(KINDS)}")
    return KINDS[kind](spec)
