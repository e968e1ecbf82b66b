"""Markdown to safe HTML, with @mentions and #hashtags.

Rendering is CommonMark (markdown-it) with raw HTML off, plus tables, strikethrough and bare
URLs; the result is then sanitised with an allowlist (nh3, the Ammonia sanitizer): only the
tags and attributes below survive, only http, https and mailto links (and our own relative
links), and every link gets ``rel="noopener nofollow ugc"``. Images are not allowed in text:
photos come through the upload pipeline, never from a URL that could track readers.

Mentions (``@handle``) and hashtags (``#word``) are found in text only — never inside code,
links or URLs — by a markdown-it core rule, so what is linked is exactly what is recorded.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

HASHTAG_MAX = 100
_TAG = r"(?<![\w#&/])#(?P<tag>(?!\d+\b)\w{1,100})"
_MENTION = r"(?<![\w@./])@(?P<handle>[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?)"
_TOKENS = re.compile(f"{_TAG}|{_MENTION}")

ALLOWED_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "del",
    "s",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
ALLOWED_CLASSES = {"a": {"mention", "hashtag"}}
URL_SCHEMES = {"http", "https", "mailto"}
# The only relative links that survive are the ones the renderer makes itself. Anything else
# without a scheme (``//evil.example``, ``/\evil.example``, ``java%09script:``) is dropped.
_OWN_LINK = re.compile(r"/(?:people|hashtags)/[^/\\]")


def normalise_hashtag(label: str) -> str:
    # Cut to the stored length: case folding can lengthen a tag ("ß" -> "ss"), and the link
    # must name the tag as stored.
    return unicodedata.normalize("NFKC", label).casefold()[:HASHTAG_MAX]


@dataclass
class Rendered:
    html: str
    # Handles as written (lower-cased) that resolved to people, with the person's id.
    mentions: dict[str, int] = field(default_factory=dict)
    # Normalised name -> first spelling.
    hashtags: dict[str, str] = field(default_factory=dict)


Resolver = Callable[[set[str]], Mapping[str, int]]


def _scan(text: str) -> tuple[set[str], dict[str, str]]:
    handles: set[str] = set()
    tags: dict[str, str] = {}
    for match in _TOKENS.finditer(text):
        if match["tag"]:
            tags.setdefault(normalise_hashtag(match["tag"]), match["tag"])
        else:
            handles.add(match["handle"].lower())
    return handles, tags


def _text_tokens(tokens: list[Token]) -> list[tuple[Token, int]]:
    """Text children of inline tokens that are not inside a link."""
    out = []
    for block in tokens:
        if block.type != "inline" or not block.children:
            continue
        depth = 0
        for index, child in enumerate(block.children):
            if child.type == "link_open":
                depth += 1
            elif child.type == "link_close":
                depth -= 1
            elif child.type == "text" and depth == 0:
                out.append((block, index))
    return out


def _link(href: str, css: str, text: str) -> list[Token]:
    open_ = Token("link_open", "a", 1)
    open_.attrs = {"href": href, "class": css}
    body = Token("text", "", 0)
    body.content = text
    return [open_, body, Token("link_close", "a", -1)]


def _make_rule() -> Callable[[StateCore], None]:
    """The rule that links hashtags and the mentions resolved in ``env["mentions"]``."""

    def rule(state: StateCore) -> None:
        mentions: Mapping[str, int] = state.env.get("mentions", {})
        # Walk backwards so that replacing a child does not shift the ones still to visit.
        for block, index in reversed(_text_tokens(state.tokens)):
            assert block.children is not None
            text = block.children[index].content
            pieces: list[Token] = []
            last = 0
            for match in _TOKENS.finditer(text):
                if match["handle"] and match["handle"].lower() not in mentions:
                    continue  # an unknown handle stays plain text
                if match.start() > last:
                    plain = Token("text", "", 0)
                    plain.content = text[last : match.start()]
                    pieces.append(plain)
                if match["tag"]:
                    name = normalise_hashtag(match["tag"])
                    pieces += _link(f"/hashtags/{name}", "hashtag", match.group(0))
                else:
                    person = mentions[match["handle"].lower()]
                    pieces += _link(f"/people/{person}", "mention", match.group(0))
                last = match.end()
            if not pieces:
                continue
            if last < len(text):
                tail = Token("text", "", 0)
                tail.content = text[last:]
                pieces.append(tail)
            block.children[index : index + 1] = pieces

    return rule


def _new_parser(linking: bool) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False})
    md.enable(["table", "strikethrough", "linkify"])
    md.disable(["image"])
    if linking:
        md.core.ruler.push("esn_mentions_hashtags", _make_rule())
    return md


# Building a parser costs more than rendering a short post, so each thread keeps its own pair
# (per thread, not per process: the linkify matcher keeps state while it scans a text).
_parsers = threading.local()


def _parser(linking: bool) -> MarkdownIt:
    pair = getattr(_parsers, "pair", None)
    if pair is None:
        pair = _parsers.pair = (_new_parser(linking=False), _new_parser(linking=True))
    return pair[linking]


def _own_link(url: str) -> str | None:
    return url if _OWN_LINK.match(url) else None


def sanitize(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        allowed_classes=ALLOWED_CLASSES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener nofollow ugc",
        strip_comments=True,
        url_relative=_own_link,
    )


def render(source: str, resolve_mentions: Resolver | None = None) -> Rendered:
    """Render ``source`` to sanitised HTML. ``resolve_mentions`` maps lower-cased handles to
    person ids (unknown handles are left out and stay plain text)."""
    # First pass: candidates in text only (not code, not link text or URLs), unresolved.
    handles: set[str] = set()
    tags: dict[str, str] = {}
    for block, index in _text_tokens(_parser(linking=False).parse(source)):
        assert block.children is not None
        found_handles, found_tags = _scan(block.children[index].content)
        handles |= found_handles
        for name, label in found_tags.items():
            tags.setdefault(name, label)
    mentions = dict(resolve_mentions(handles)) if (handles and resolve_mentions) else {}
    html = _parser(linking=True).render(source, {"mentions": mentions})
    return Rendered(html=sanitize(html), mentions=mentions, hashtags=tags)
