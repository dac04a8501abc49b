"""Responses are Markdown from LLMs: rendered with comrak, then sanitized with nh3.

comrak is the CommonMark + GFM renderer in Rust that GitLab and docs.rs use; its Python
package has wheels for CPython 3.12, 3.13 and 3.14 (markdown-it-pyrs, used before, has none
past 3.12, so a 3.13 install tried to build it with Rust). Measured on ~1 KB LLM responses with
benchmarks/markdown_render.py: comrak renders one in ~8 µs, markdown-it-pyrs in ~14 µs;
cmarkgfm (cmark-gfm) in ~17 µs but its wrapper never frees the parsed tree nor the output,
~11 KB kept per response, so a web worker would grow without bound.

No raw HTML from a response reaches a page: comrak's ``escape`` shows raw HTML escaped, as the
response wrote it, and nh3 keeps only the tags below, links only to http, https and mailto
URLs, and adds rel="noopener noreferrer nofollow" to every link. Images are dropped (they
would load from other sites).
"""

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
    rendered = comrak.render_markdown(
        text or "", extension_options=_extensions, render_options=_render
    )
    return mark_safe(_cleaner.clean(rendered))  # noqa: S308 - sanitized by nh3
