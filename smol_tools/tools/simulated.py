"""web_search, get_weather, translate: offline and deterministic unless a provider is set.

There is no internet in the demo, so by default each answer is generated from a hash of the
input (same question, same answer) and carries `"simulated": true` and a note saying so. An
operator can plug in a real service with ToolSettings.search_provider / weather_provider /
translate_provider; the results then say `"simulated": false`."""

from __future__ import annotations

import hashlib
import random
import re

from .base import Tool, ToolError, ToolResult, ToolSession, json_result

_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"


def seeded_random(*parts: str) -> random.Random:
    """A generator seeded by the input, stable across runs and Python versions (not hash())."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# --- web_search -------------------------------------------------------------------------------

_RESULT_TEMPLATES = (
    ("{q}: an overview", "An introduction to {q}: what it is, how it works and why it matters."),
    ("{q} explained for beginners", "A step-by-step guide to {q} with examples and common pitfalls."),
    ("Latest news about {q}", "Recent developments, announcements and analysis related to {q}."),
    ("{q} - frequently asked questions", "Short answers to the questions people most often ask about {q}."),
    ("A brief history of {q}", "How {q} came about, the key people involved and major milestones."),
    ("{q}: pros and cons", "A balanced look at the advantages and drawbacks of {q}."),
    ("Top 10 facts about {q}", "Surprising and useful facts about {q}, with sources."),
    ("{q} - community discussion", "Forum thread where practitioners share experience with {q}."),
)
_DOMAINS = ("example.com", "example.org", "example.net")  # reserved: never real sites


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "result"


def web_search(arguments: dict, session: ToolSession) -> ToolResult:
    query = _normalize(arguments["query"])
    if not query:
        raise ToolError("query is empty")
    count = arguments.get("num_results", 5)
    provider = session.settings.search_provider
    if provider is not None:
        results = list(provider(query, count))[:count]
        return json_result({"query": query, "results": results, "simulated": False})
    rng = seeded_random("search", query.lower())
    templates = rng.sample(_RESULT_TEMPLATES, k=min(count, len(_RESULT_TEMPLATES)))
    results = []
    for rank, (title, snippet) in enumerate(templates, start=1):
        domain = _DOMAINS[rng.randrange(len(_DOMAINS))]
        results.append(
            {
                "title": title.format(q=query),
                "url": f"https://{domain}/{_slug(query)}/{rank}",
                "snippet": snippet.format(q=query),
            }
        )
    return json_result(
        {
            "query": query,
            "results": results,
            "simulated": True,
            "note": "Offline demo: these results are generated from the query, not from a real search engine.",
        }
    )


# --- get_weather ------------------------------------------------------------------------------

_CONDITIONS_WARM = ("sunny", "clear", "partly cloudy", "cloudy", "rain", "thunderstorm", "windy")
_CONDITIONS_COLD = ("clear", "cloudy", "snow", "fog", "overcast", "light snow", "windy")


def get_weather(arguments: dict, session: ToolSession) -> ToolResult:
    city = _normalize(arguments["city"])
    if not city:
        raise ToolError("city is empty")
    unit = arguments.get("unit", "celsius")
    provider = session.settings.weather_provider
    if provider is not None:
        return json_result({**provider(city, unit), "simulated": False})
    rng = seeded_random("weather", city.casefold())
    celsius = rng.randint(-8, 34)
    condition = rng.choice(_CONDITIONS_COLD if celsius <= 2 else _CONDITIONS_WARM)
    result: dict = {"city": city}
    if unit == "fahrenheit":
        result["temperature_f"] = round(celsius * 9 / 5 + 32)
    else:
        result["temperature_c"] = celsius
    result.update(
        {
            "condition": condition,
            "humidity_pct": rng.randint(25, 95),
            "wind_kph": rng.randint(0, 45),
            "simulated": True,
            "note": "Offline demo: generated from the city name, not real weather data.",
        }
    )
    return json_result(result)


# --- translate --------------------------------------------------------------------------------

LANGUAGES = {
    "ar": "Arabic", "de": "German", "en": "English", "es": "Spanish", "fr": "French", "hi": "Hindi",
    "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch", "pl": "Polish",
    "pt": "Portuguese", "ru": "Russian", "sv": "Swedish", "tr": "Turkish", "uk": "Ukrainian",
    "zh": "Chinese",
}  # fmt: skip
_BY_NAME = {name.lower(): code for code, name in LANGUAGES.items()}

# A tiny phrasebook so the common demo questions get a real answer.
PHRASEBOOK = {
    "hello": {"fr": "bonjour", "es": "hola", "de": "hallo", "it": "ciao", "pt": "olá", "ja": "こんにちは", "nl": "hallo", "zh": "你好"},
    "thank you": {"fr": "merci", "es": "gracias", "de": "danke", "it": "grazie", "pt": "obrigado", "ja": "ありがとう", "nl": "dank je", "zh": "谢谢"},
    "good morning": {"fr": "bonjour", "es": "buenos días", "de": "guten Morgen", "it": "buongiorno", "pt": "bom dia", "ja": "おはようございます", "nl": "goedemorgen", "zh": "早上好"},
    "goodbye": {"fr": "au revoir", "es": "adiós", "de": "auf Wiedersehen", "it": "arrivederci", "pt": "adeus", "ja": "さようなら", "nl": "tot ziens", "zh": "再见"},
    "please": {"fr": "s'il vous plaît", "es": "por favor", "de": "bitte", "it": "per favore", "pt": "por favor", "ja": "お願いします", "nl": "alstublieft", "zh": "请"},
    "yes": {"fr": "oui", "es": "sí", "de": "ja", "it": "sì", "pt": "sim", "ja": "はい", "nl": "ja", "zh": "是"},
    "no": {"fr": "non", "es": "no", "de": "nein", "it": "no", "pt": "não", "ja": "いいえ", "nl": "nee", "zh": "不"},
    "how are you?": {"fr": "comment allez-vous ?", "es": "¿cómo estás?", "de": "wie geht es dir?", "it": "come stai?", "pt": "como você está?", "ja": "お元気ですか？", "nl": "hoe gaat het?", "zh": "你好吗？"},
}  # fmt: skip


def language_code(value: str) -> str:
    key = _normalize(value).lower()
    if key in LANGUAGES:
        return key
    if key in _BY_NAME:
        return _BY_NAME[key]
    supported = ", ".join(f"{code} ({name})" for code, name in LANGUAGES.items())
    raise ToolError(f"unsupported language {value!r}; use one of: {supported}")


def translate(arguments: dict, session: ToolSession) -> ToolResult:
    text = arguments["text"]
    if not text.strip():
        raise ToolError("text is empty")
    target = language_code(arguments["target_language"])
    source = language_code(arguments["source_language"]) if arguments.get("source_language") else None
    provider = session.settings.translate_provider
    if provider is not None:
        translated = provider(text, target, source)
        return json_result({"translation": translated, "source_language": source, "target_language": target, "simulated": False})
    known = PHRASEBOOK.get(_normalize(text).lower().rstrip("!. "), {})
    if target in known and source in (None, "en"):
        translation, how = known[target], "from a small built-in phrasebook"
    else:
        translation, how = f"[{LANGUAGES[target]}] {text}", "a placeholder that only tags the text"
    return json_result(
        {
            "translation": translation,
            "source_language": source or "auto",
            "target_language": target,
            "simulated": True,
            "note": f"Offline demo: not a real translation service; this is {how}.",
        }
    )


WEB_SEARCH = Tool(
    name="web_search",
    description="Search the web and return the top results (title, URL, snippet). Demo: results are simulated offline.",
    parameters={
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to search for.", "minLength": 1, "maxLength": 300, "pattern": _NO_CONTROL},
            "num_results": {"type": "integer", "description": "How many results (default 5).", "minimum": 1, "maximum": 8},
        },
        "required": ["query"],
        "additionalProperties": False,
    },
    run=web_search,
    simulated=True,
)

GET_WEATHER = Tool(
    name="get_weather",
    description="Get the current weather for a city. Demo: the weather is simulated offline.",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name, e.g. 'Paris'.", "minLength": 1, "maxLength": 100, "pattern": _NO_CONTROL},
            "unit": {"type": "string", "description": "Temperature unit (default celsius).", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
        "additionalProperties": False,
    },
    run=get_weather,
    simulated=True,
)

TRANSLATE = Tool(
    name="translate",
    description=(
        "Translate text into another language (ISO 639-1 code like 'fr' or an English language "
        "name). Demo: simulated offline with a tiny phrasebook."
    ),
    parameters={
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "The text to translate.", "minLength": 1, "maxLength": 5000},
            "target_language": {"type": "string", "description": "Language to translate into, e.g. 'fr' or 'French'.", "minLength": 2, "maxLength": 40},
            "source_language": {"type": "string", "description": "Language of the text (optional; detected when omitted).", "minLength": 2, "maxLength": 40},
        },
        "required": ["text", "target_language"],
        "additionalProperties": False,
    },
    run=translate,
    simulated=True,
)
