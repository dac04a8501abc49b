"""Responses are Markdown from LLMs: rendered with markdown-it-py, then sanitized with nh3.

No raw HTML from a response reaches a page: markdown-it escapes it (``html`` off) and nh3 keeps only
the tags below, links only to http, https and mailto URLs, and adds rel="noopener noreferrer
nofollow" to every link. Images are dropped (they would load from other sites).
"""

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

_TAGS = {
    "a", "p", "br", "hr", "em", "strong", "s", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_markdown.enable(["table", "strikethrough"])
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
    return mark_safe(_cleaner.clean(_markdown.render(text or "")))  # noqa: S308 - sanitized by nh3
