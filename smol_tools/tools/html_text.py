"""Readable text from HTML: no scripts, styles or markup, in time linear in the input.

A small tokenizer in the manner of the HTML5 one, not `html.parser`: the stdlib parser, when a
`<` does not open a complete tag, gives it up as text and starts over one character later, so
`<a ` repeated (or an unclosed quote) makes it quadratic (20 KB took 3 s; our 1 MB response cap
would allow hours). Here every step moves forward and never looks at a character twice: a tag
that the input never closes ends the document (what a browser does at end of file inside a
tag), and the end of script/style/title content is found by one forward search."""

from __future__ import annotations

import re
from html import unescape

# Content of these elements is never text a reader sees.
_SKIPPED = frozenset({"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas", "select",
                      "noembed", "noframes"})  # fmt: skip
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "fieldset", "figcaption",
        "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav",
        "ol", "p", "pre", "section", "table", "tbody", "td", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
# Elements whose content is raw text up to their own end tag (no markup inside); title and
# textarea decode character references in it.
_RAW_TEXT = frozenset({"script", "style", "noscript", "iframe", "noembed", "noframes", "xmp", "title", "textarea"})
_DECODED_RAW = frozenset({"title", "textarea"})

_MARKUP = re.compile(r"<[a-zA-Z/!?]")
_TAG_NAME = re.compile(r"[^\t\n\f\r />]*")
_UNTIL_GT_OR_EQ = re.compile(r"[^>=]*")
_SPACES = re.compile(r"[\t\n\f\r ]*")
_RAW_TEXT_OR_PLAIN = _RAW_TEXT | {"plaintext"}
# A tag without "=" inside: one match. When it fails it has read no further than the next ">"
# or "=", which the full path then reads again only once, so the total stays linear.
_SIMPLE_TAG = re.compile(r"<(/?)([a-zA-Z][^\t\n\f\r />]*)[^>=]*?(/?)>")
_RAW_END = {name: re.compile(rf"</{name}(?=[\t\n\f\r />])", re.IGNORECASE) for name in _RAW_TEXT}


def _tag_end(html: str, pos: int) -> tuple[int, bool]:
    """Where the tag whose attributes start at `pos` ends (just past its `>`), and whether it
    is self-closing; (-1, False) when the input ends inside the tag. Quotes only count after
    `=`, as in HTML; each quoted value is skipped with one find()."""
    length = len(html)
    while True:
        pos = _UNTIL_GT_OR_EQ.match(html, pos).end()
        if pos >= length:
            return -1, False
        if html[pos] == ">":
            return pos + 1, html[pos - 1] == "/"
        pos = _SPACES.match(html, pos + 1).end()  # after "="
        if pos < length and html[pos] in "\"'":
            close = html.find(html[pos], pos + 1)
            if close < 0:
                return -1, False
            pos = close + 1


class _Extractor:
    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.title: list[str] = []
        self._skip_depth = 0

    # -- events ---------------------------------------------------------------------------
    def text(self, data: str) -> None:
        if data and not self._skip_depth:
            self.pieces.append(data)

    def start(self, tag: str, self_closing: bool) -> None:
        if self_closing:  # <br/>, <hr/>: a line break; never opens a skipped element
            if tag in _BLOCK:
                self.pieces.append("\n")
        elif tag in _SKIPPED:
            self._skip_depth += 1
        elif tag in _BLOCK:
            self.pieces.append("\n- " if tag == "li" else "\n")
        elif tag in ("td", "th"):
            self.pieces.append(" ")

    def end(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK and tag not in _VOID and tag != "li":  # the next "\n- " separates items
            self.pieces.append("\n")

    def raw(self, tag: str, content: str) -> None:
        if self._skip_depth:
            return
        if tag == "title":
            self.title.append(_decode(content))
        elif tag not in _SKIPPED:
            self.pieces.append(_decode(content) if tag in _DECODED_RAW else content)

    # -- tokenizer ------------------------------------------------------------------------
    def feed(self, html: str) -> None:
        length = len(html)
        pos = 0
        while pos < length:
            found = _MARKUP.search(html, pos)
            if found is None:
                self.text(_decode(html[pos:]))
                return
            start = found.start()
            if start > pos:
                self.text(_decode(html[pos:start]))
            simple = _SIMPLE_TAG.match(html, start)
            if simple is not None:  # the common case in one match: a tag without attribute values
                closing, tag, self_closing = simple.groups()
                tag = tag.lower()
                if closing:
                    self.end(tag)
                    pos = simple.end()
                    continue
                if tag not in _RAW_TEXT_OR_PLAIN:
                    self.start(tag, bool(self_closing))
                    pos = simple.end()
                    continue
            pos = self._markup(html, start)

    def _markup(self, html: str, start: int) -> int:
        """Consume the markup at `start` (a `<` followed by a letter, `/`, `!` or `?`) and return
        the position after it; len(html) when the input ends inside it."""
        length = len(html)
        kind = html[start + 1]
        if kind == "!" and html.startswith("<!--", start):
            if html.startswith(">", start + 4):  # <!--> and <!--->: empty comments
                return start + 5
            if html.startswith("->", start + 4):
                return start + 6
            close = html.find("-->", start + 4)
            return length if close < 0 else close + 3
        if kind in "!?" or (kind == "/" and not html[start + 2 : start + 3].isalpha()):
            if html.startswith("</>", start):
                return start + 3
            close = html.find(">", start + 2)  # a bogus comment: up to the next ">"
            return length if close < 0 else close + 1
        closing = kind == "/"
        name_at = start + 2 if closing else start + 1
        name_end = _TAG_NAME.match(html, name_at).end()
        tag = html[name_at:name_end].lower()
        end, self_closing = _tag_end(html, name_end)
        if end < 0:
            return length  # end of input inside a tag: the tag is dropped
        if closing:
            self.end(tag)
            return end
        self.start(tag, self_closing)
        if tag == "plaintext" and not self_closing:
            self.text(html[end:])
            return length
        if tag in _RAW_TEXT and not self_closing:
            found = _RAW_END[tag].search(html, end)
            content_end = length if found is None else found.start()
            self.raw(tag, html[end:content_end])
            if found is None:
                self.end(tag)
                return length
            after, _ = _tag_end(html, found.end())
            self.end(tag)
            return length if after < 0 else after
        return end


def _decode(text: str) -> str:
    return unescape(text) if "&" in text else text


def _tidy(text: str) -> str:
    lines = (re.sub(r"[ \t\f\v\u00a0]+", " ", line).strip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> tuple[str, str]:
    """Return (title, text) of an HTML document."""
    extractor = _Extractor()
    extractor.feed(html)
    return _tidy(" ".join(extractor.title)), _tidy("".join(extractor.pieces))
