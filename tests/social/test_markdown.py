"""Markdown rendering and sanitizing: no XSS payload survives into stored or served HTML, and
what should be rendered (emphasis, code, tables, links, mentions, hashtags) is.

The output is checked with the standard library's HTML parser against an allowlist written out
here, independently of the one in ``esn.social.markdown``: loosening that one fails these tests.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from esn.accounts.actions import do_deactivate_user
from esn.extensions import db
from esn.social.markdown import render, sanitize
from esn.social.models import Comment, Post
from tests.conftest import ApiClient, fresh, make_user

TAGS = {
    "p", "br", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title", "class", "rel"}, "ol": {"start"}}
REL = "noopener nofollow ugc"
OWN_LINK = re.compile(r"^/(people/\d+|hashtags/\w+)$")

# Each payload is an attack on the renderer or the sanitizer. None may leave an executable
# trace: a tag outside the allowlist, an event handler, a style, a non-http(s)/mailto URL.
XSS = [
    # plain HTML (raw HTML is off, and the sanitizer would drop it anyway)
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=x OnErRoR=alert(1)>",
    "<body onload=alert(1)>",
    "<details open ontoggle=alert(1)>x</details>",
    "<x onmouseover=alert(1)>hover</x>",
    '<a href="https://ok.example" onclick="alert(1)">x</a>',
    '<a href="javascript:alert(1)">x</a>',
    # SVG and MathML
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    # frames, objects, forms, meta
    '<iframe src="javascript:alert(1)"></iframe>',
    "<iframe srcdoc='<script>alert(1)</script>'></iframe>",
    '<object data="javascript:alert(1)"></object>',
    '<embed src="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">',
    '<form action="javascript:alert(1)"><button>x</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    # styles
    '<p style="background:url(javascript:alert(1))">x</p>',
    '<div style="width: expression(alert(1))">x</div>',
    "<style>body{width:expression(alert(1))}</style>",
    # comments and broken markup
    "<!-- <script>alert(1)</script> -->",
    "<!--><img src=x onerror=alert(1)>-->",
    '<img src="x',
    "<a href='javascript:alert(1)'",
    "<<script>alert(1);//<</script>",
    # Markdown links with bad schemes, in every spelling
    "[x](javascript:alert(1))",
    "[x]( javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](java\tscript:alert(1))",
    "[x](java&#x09;script:alert(1))",
    "[x](jav&#x0A;ascript:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](&#x6A;&#x61;vascript:alert(1))",
    "[x](javascript&colon;alert(1))",
    "[x](%6Aavascript:alert(1))",
    "[x](<javascript:alert(1)>)",
    "[x](vbscript:msgbox(1))",
    "[x](VBScript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](data:image/png;base64,iVBORw0KGgo=)",
    "[x](file:///etc/passwd)",
    "[x](//evil.example)",
    "[x](/\\evil.example)",
    "<javascript:alert(1)>",
    "<vbscript:msgbox(1)>",
    "[x][ref]\n\n[ref]: javascript:alert(1)",
    '[x][ref]\n\n[ref]: <javascript:alert(1)> "t"',
    "[x]\n\n[x]: data:text/html,<script>alert(1)</script>",
    # attribute break-outs through titles and URLs
    '[x](https://ok.example "t\\" onmouseover=\\"alert(1)")',
    '[x](https://ok.example/"onmouseover="alert(1))',
    '<http://ok.example/"><script>alert(1)</script>>',
    "https://ok.example/<script>alert(1)</script>",
    # images (not allowed at all: no tracking pixels)
    "![x](javascript:alert(1))",
    "![x](https://tracker.example/pixel.gif)",
    '![x](x" onerror="alert(1))',
    "[![x](https://tracker.example/p.gif)](javascript:alert(1))",
    # nested Markdown
    "**<img src=x onerror=alert(1)>**",
    "[<img src=x onerror=alert(1)>](https://ok.example)",
    "[[x](javascript:alert(1))](https://ok.example)",
    "> <script>alert(1)</script>\n> [x](javascript:alert(1))",
    "- [x](javascript:alert(1))\n- <svg onload=alert(1)>",
    "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
    "`<script>alert(1)</script>`",
    "```html\n<script>alert(1)</script>\n```",
    "~~<script>alert(1)</script>~~",
    # mentions and hashtags as injection vectors
    "@<script>alert(1)</script>",
    "@bob<svg onload=alert(1)>",
    '@bob"><img src=x onerror=alert(1)>',
    '#"><img src=x onerror=alert(1)>',
    "#tag<svg/onload=alert(1)>",
    "#javascript:alert(1)",
    "[@bob](javascript:alert(1))",
    "[#tag](javascript:alert(1))",
]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.oddities: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_comment(self, data: str) -> None:
        self.oddities.append(f"comment {data!r}")

    def handle_decl(self, decl: str) -> None:
        self.oddities.append(f"declaration {decl!r}")

    def handle_pi(self, data: str) -> None:
        self.oddities.append(f"processing instruction {data!r}")

    def unknown_decl(self, data: str) -> None:
        self.oddities.append(f"unknown declaration {data!r}")


def _safe_href(href: str) -> bool:
    if OWN_LINK.match(href):
        return True
    # No control characters or spaces that a browser would strip before reading the scheme.
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in href):
        return False
    parts = urlsplit(href)
    if parts.scheme in ("http", "https"):
        return bool(parts.netloc)
    return parts.scheme == "mailto"


def assert_safe(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """Parse ``html`` and fail on anything outside the allowlist; returns the elements."""
    parser = _Collector()
    parser.feed(html)
    parser.close()
    assert not parser.oddities, (parser.oddities, html)
    for tag, attrs in parser.elements:
        assert tag in TAGS, (tag, html)
        assert set(attrs) <= ATTRIBUTES.get(tag, set()), (tag, attrs, html)
        for name, value in attrs.items():
            assert not name.startswith("on"), (name, html)
            assert value is not None, (name, html)
        if tag == "a":
            assert attrs.get("rel") == REL, (attrs, html)
            if "href" in attrs:
                assert _safe_href(attrs["href"] or ""), (attrs["href"], html)
            if "class" in attrs:
                assert attrs["class"] in ("mention", "hashtag"), (attrs, html)
        if tag == "ol" and "start" in attrs:
            assert (attrs["start"] or "").isdigit(), (attrs, html)
    # A second pass of the sanitizer changes nothing: what is stored is a fixed point.
    assert sanitize(html) == html
    return parser.elements


def _resolver(handles: set[str]) -> dict[str, int]:
    return {h: 7 for h in handles if h == "bob"}


def _links(html: str) -> list[tuple[str | None, str | None]]:
    return [(a.get("href"), a.get("class")) for tag, a in assert_safe(html) if tag == "a"]


# --- the corpus, at the renderer ----------------------------------------------------------------


def test_the_corpus_is_large_and_distinct():
    assert len(XSS) >= 40 and len(set(XSS)) == len(XSS)


@pytest.mark.parametrize("payload", XSS)
def test_payload_does_not_survive_rendering(payload):
    html = render(payload, _resolver).html
    assert_safe(html)
    # The payload's text may remain (escaped, harmless); its markup may not.
    assert "<script" not in html.lower()
    assert "javascript:" not in " ".join(str(v) for _, a in assert_safe(html) for v in a.values())


@pytest.mark.parametrize(
    "html",
    [
        '<a href="javascript:alert(1)" onclick="x()">x</a>',
        '<a href="JAVASCRIPT:alert(1)">x</a>',
        '<a href="&#106;avascript:alert(1)">x</a>',
        '<a href="java&#9;script:alert(1)">x</a>',
        '<a href="//evil.example">x</a>',
        '<a href="/admin">x</a>',
        '<a href="https://ok.example" class="mention evil" rel="opener" target="_blank">x</a>',
        '<img src=x onerror="alert(1)"><svg><script>alert(1)</script></svg>',
        "<style>*{x:expression(alert(1))}</style><p style='color:red'>x</p>",
        "<iframe src=https://ok.example></iframe><object></object><embed>",
        "<!-- x --><![CDATA[ x ]]><?php x ?>",
        '<table><tr><td onmouseover="x">1</td></tr></table>',
    ],
)
def test_the_sanitizer_alone_holds_even_if_the_renderer_let_html_through(html):
    assert_safe(sanitize(html))


FRAGMENTS = [
    "<", ">", "[", "]", "(", ")", "!", '"', "'", "&", "#", "@", ":", "/", "\\", "`", "*", "~",
    "|", "-", "\n", "\t", " ", "=", ";", "x", "bob", "tag", "javascript", "script", "onerror",
    "svg", "img src", "https://ok.example", "&#106;", "data", "<a href=", "<!--", "-->",
    "www.example.com", "a@example.com",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join))
def test_any_mix_of_markup_characters_renders_safe(source):
    assert_safe(render(source, _resolver).html)


# --- the corpus, through the API: stored and served ---------------------------------------------


def test_no_payload_survives_into_stored_or_served_html(app):
    author = make_user("anna@example.org")
    make_user("bob@example.org")
    client = ApiClient(app)
    client.sign_in(author.email)
    target = client.post("/api/v1/posts", json={"body": "Comments below"}).get_json()["id"]
    post_ids, comment_ids = [], []
    for payload in XSS:
        created = client.post("/api/v1/posts", json={"body": payload})
        assert created.status_code == 201, (payload, created.get_json())
        assert created.headers["Content-Type"].startswith("application/json")
        assert created.headers["X-Content-Type-Options"] == "nosniff"
        assert_safe(created.get_json()["body_html"])
        assert created.get_json()["body"] == payload  # the source is kept as written
        post_ids.append(created.get_json()["id"])
        comment = client.post(f"/api/v1/posts/{target}/comments", json={"body": payload})
        assert comment.status_code == 201, (payload, comment.get_json())
        assert_safe(comment.get_json()["body_html"])
        comment_ids.append(comment.get_json()["id"])
    article = client.post(
        "/api/v1/posts", json={"kind": "article", "title": "<script>", "body": "\n\n".join(XSS)}
    )
    assert article.status_code == 201
    assert_safe(article.get_json()["body_html"])
    post_ids.append(article.get_json()["id"])

    # Stored: the only HTML the database holds.
    fresh()
    stored = db.session.scalars(select(Post.body_html).where(Post.id.in_(post_ids))).all()
    stored += db.session.scalars(select(Comment.body_html).where(Comment.id.in_(comment_ids))).all()
    assert len(stored) == len(post_ids) + len(comment_ids)
    for html in stored:
        assert_safe(html)

    # Served: every read path that returns HTML (the create responses were checked above).
    served: list[str] = []
    for post_id in post_ids[::10]:
        served.append(client.get(f"/api/v1/posts/{post_id}").get_json()["body_html"])
    page: dict[str, Any] = {"next_cursor": None}
    while True:
        params = {"limit": 100} | ({"cursor": page["next_cursor"]} if page["next_cursor"] else {})
        page = client.get("/api/v1/feed", query_string=params).get_json()
        served += [p["body_html"] for p in page["items"]]
        if not page["next_cursor"]:
            break
    profile = client.get(f"/api/v1/people/{author.id}/feed", query_string={"limit": 100})
    served += [p["body_html"] for p in profile.get_json()["items"]]
    comments = client.get(f"/api/v1/posts/{target}/comments", query_string={"limit": 200})
    served += [c["body_html"] for c in comments.get_json()["items"]]
    assert len(served) >= 3 * len(XSS)
    for html in served:
        assert_safe(html)


def test_a_title_is_served_as_text_not_html(app):
    author = make_user("anna@example.org")
    client = ApiClient(app)
    client.sign_in(author.email)
    title = '<img src=x onerror=alert(1)>"'
    article = client.post("/api/v1/posts", json={"kind": "article", "title": title, "body": "b"})
    assert article.status_code == 201
    # The API returns the title as a JSON string; the client must render it as text.
    assert article.get_json()["title"] == title
    assert article.headers["Content-Type"].startswith("application/json")


# --- what should render, does -------------------------------------------------------------------


def test_emphasis_strong_and_strikethrough():
    html = render("*em* **strong** ~~gone~~ _also em_", None).html
    assert "<em>em</em>" in html and "<strong>strong</strong>" in html
    assert "<s>gone</s>" in html or "<del>gone</del>" in html
    assert "<em>also em</em>" in html
    assert_safe(html)


def test_headings_lists_quotes_and_rules():
    html = render("# H1\n\n### H3\n\n3. three\n4. four\n\n- a\n- b\n\n> quote\n\n---", None).html
    assert "<h1>H1</h1>" in html and "<h3>H3</h3>" in html
    assert '<ol start="3">' in html and "<li>three</li>" in html
    assert "<ul>" in html and "<blockquote>" in html and "<hr" in html
    assert_safe(html)


def test_code_spans_and_blocks_keep_their_text_and_link_nothing():
    source = "`@bob #inline` and\n\n```python\nprint('@bob #block <b>')\n```\n\n    @bob #indented"
    rendered = render(source, _resolver)
    html = rendered.html
    assert "<code>@bob #inline</code>" in html
    assert "print('@bob #block &lt;b&gt;')" in html and "<pre>" in html
    assert "@bob #indented" in html
    assert _links(html) == []
    # Nothing inside code is recorded as a mention or a hashtag either.
    assert rendered.mentions == {} and rendered.hashtags == {}
    # The fence's language is not turned into an attribute.
    assert "class=" not in html


def test_tables():
    html = render("| a | b |\n|---|:-:|\n| 1 | **2** |", None).html
    for fragment in ("<table>", "<thead>", "<th>a</th>", "<tbody>", "<td>1</td>"):
        assert fragment in html
    assert "<strong>2</strong>" in html
    # Alignment comes as a style attribute, which is dropped.
    assert "style" not in html
    assert_safe(html)


def test_bare_urls_and_email_addresses_are_linkified_safely():
    html = render(
        "See https://ok.example/a?b=1&c=2 and www.example.com or mail a@example.com", None
    )
    links = _links(html.html)
    assert ("https://ok.example/a?b=1&c=2", None) in links
    assert ("http://www.example.com", None) in links
    assert ("mailto:a@example.com", None) in links
    assert html.html.count(f'rel="{REL}"') == 3


def test_own_links_are_kept_and_foreign_relative_links_dropped():
    html = render("[me](/people/3) [tag](/hashtags/x) [admin](/admin) [up](../x) [f](#top)", None)
    assert _links(html.html) == [
        ("/people/3", None),
        ("/hashtags/x", None),
        (None, None),
        (None, None),
        (None, None),
    ]


def test_mentions_link_only_resolved_handles():
    rendered = render("Hi @bob, @Bob and @nobody; mail bob@example.com", _resolver)
    assert rendered.mentions == {"bob": 7}
    assert _links(rendered.html) == [
        ("/people/7", "mention"),
        ("/people/7", "mention"),
        ("mailto:bob@example.com", None),
    ]
    assert "@nobody" in rendered.html


def test_an_email_address_is_not_a_mention():
    asked: list[set[str]] = []

    def resolver(handles: set[str]) -> dict[str, int]:
        asked.append(handles)
        return {h: 7 for h in handles}

    rendered = render("write to bob@ok.example or x.bob@ok.example", resolver)
    assert rendered.mentions == {} and asked == []
    assert "/people/" not in rendered.html


def test_mentions_in_link_text_are_not_mentions():
    rendered = render("[@bob](https://ok.example) and [#tag](https://ok.example)", _resolver)
    assert rendered.mentions == {} and rendered.hashtags == {}
    assert _links(rendered.html) == [("https://ok.example", None), ("https://ok.example", None)]


def test_hashtags_are_normalised_nfkc_and_casefold():
    rendered = render("#Launch #LAUNCH #\uff26\uff35\uff2c\uff2c #Straße #Café #\ufb01sh", None)
    assert rendered.hashtags == {
        "launch": "Launch",
        "full": "\uff26\uff35\uff2c\uff2c",
        "strasse": "Straße",
        "café": "Café",
        "fish": "\ufb01sh",
    }
    hrefs = [href for href, css in _links(rendered.html) if css == "hashtag"]
    assert hrefs == [
        "/hashtags/launch",
        "/hashtags/launch",
        "/hashtags/full",
        "/hashtags/strasse",
        "/hashtags/café",
        "/hashtags/fish",
    ]


def test_numbers_anchors_and_entities_are_not_hashtags():
    rendered = render("Issue #123, room #42b, C# and x#y, url https://ok.example/#frag", None)
    assert rendered.hashtags == {"42b": "42b"}
    assert [css for _, css in _links(rendered.html)] == ["hashtag", None]


# --- mentions and hashtags through the API ------------------------------------------------------


def test_mentions_resolve_only_to_active_people_by_handle(app, admin):
    author = make_user("anna@example.org")
    bob = make_user("bob@example.org")
    gone = make_user("gone@example.org")
    db.session.rollback()
    do_deactivate_user(admin, db.session.get(type(gone), gone.id))
    db.session.commit()
    client = ApiClient(app)
    client.sign_in(author.email)
    post = client.post(
        "/api/v1/posts", json={"body": "@BOB and @gone and @ghost and bob@example.org"}
    ).get_json()
    assert _links(post["body_html"]) == [
        (f"/people/{bob.id}", "mention"),
        ("mailto:bob@example.org", None),
    ]
    assert "@gone" in post["body_html"] and "@ghost" in post["body_html"]


def test_hashtags_through_the_api_are_stored_normalised(app):
    author = make_user("anna@example.org")
    client = ApiClient(app)
    client.sign_in(author.email)
    first = client.post("/api/v1/posts", json={"body": "#Straße day"}).get_json()
    second = client.post("/api/v1/posts", json={"body": "#STRASSE again, #123 is not one"})
    assert first["hashtags"] == ["Straße"]
    # The first spelling is the label; both posts share the one tag.
    assert second.get_json()["hashtags"] == ["Straße"]
    for name in ("strasse", "STRASSE", "Straße"):
        feed = client.get(f"/api/v1/hashtags/{name}/feed").get_json()["items"]
        assert [p["id"] for p in feed] == [second.get_json()["id"], first["id"]]
    assert client.get("/api/v1/hashtags/123").status_code == 404


def test_a_hashtag_that_case_folding_lengthens_still_links_to_its_feed(app):
    author = make_user("anna@example.org")
    client = ApiClient(app)
    client.sign_in(author.email)
    post = client.post("/api/v1/posts", json={"body": "#" + "ß" * 100}).get_json()
    [(href, css)] = _links(post["body_html"])
    assert css == "hashtag" and href == "/hashtags/" + "s" * 100
    feed = client.get(f"/api/v1{href}/feed")
    assert feed.status_code == 200 and [p["id"] for p in feed.get_json()["items"]] == [post["id"]]
