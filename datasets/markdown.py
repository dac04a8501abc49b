"""Responses are Markdown from LLMs: rendered with comrak, then sanitized with nh3.

comrak is the CommonMark + GFM renderer in Rust that crates.io and docs.rs use; its Python
package has wheels for CPython 3.12, 3.13 and 3.14 (markdown-it-pyrs, used before, has none
past 3.12, so a 3.13 install tried to build it with Rust). Measured on ~1 KB LLM responses with
benchmarks/markdown_render.py: comrak takes about half the time markdown-it-pyrs took (0.011
against 0.022 ms a response); cmarkgfm (cmark-gfm) takes 0.02 ms, but its wrapper never frees
the parsed tree nor the output, so a process grew by ~15 KB per response rendered.

No raw HTML from a response reaches a page. HTML is not Markdown's business here: a "<" that
does not open an autolink is hidden from the parser, so a line such as "<b>Note</b> **read
this**" is a paragraph with its Markdown rendered and its tags shown as written (as with
markdown-it's HTML rules turned off before); comrak's ``escape`` would show any raw HTML left
escaped; and nh3 keeps only the tags below, links only to http, https and mailto URLs, and adds
rel="noopener noreferrer nofollow" to every link. Images are dropped (they would load from
other sites).
"""

import re

import comrak
import nh3
from django.utils.safestring import SafeString, mark_safe

_TAGS = {
    "a", "p", "br", "hr", "em", "strong", "s", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}

# CommonMark plus GFM tables and strikethrough; raw HTML shown escaped, never passed through.
_extensions = comrak.ExtensionOptions()
_extensions.table = True
_extensions.strikethrough = True
_render = comrak.RenderOptions()
_render.escape = True
# A noncharacter stands in for "<" while parsing; one already in the text becomes U+FFFD.
_LT = "\ufdd0"
# "<" except where it opens a CommonMark autolink (<https://…>, <name@example.org>).
_NOT_AUTOLINK = re.compile(
    r"<(?!(?:[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\x00-\x20<>]*|[\w.!#$%&'*+/=?^`{|}~-]+@[A-Za-z0-9.-]+)>)"
)
_cleaner = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags={"script", "style"},
    attributes=_ATTRIBUTES,
    url_schemes={"http", "https", "mailto"},
    url_relative="deny",
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


def render_markdown(text: str) -> SafeString:
    """Markdown ``text`` as sanitized HTML, safe to insert into a page as it is."""
    text = text or ""
    if _LT in text:
        text = text.replace(_LT, "\ufffd")
    if "<" in text:
        text = _NOT_AUTOLINK.sub(_LT, text)
    rendered = comrak.render_markdown(text, extension_options=_extensions, render_options=_render)
    if _LT in rendered:
        rendered = rendered.replace(_LT, "&lt;")
    return mark_safe(_cleaner.clean(rendered))  # noqa: S308 - sanitized by nh3
