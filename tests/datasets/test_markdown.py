"""Rendering a response: Markdown to sanitized HTML (datasets.markdown)."""

import pytest

from datasets.markdown import render_markdown


def test_markdown_renders_the_formatting_support_answers_use():
    html = render_markdown(
        "# Steps\n\n1. **Open** *My orders*\n2. Check `tracking`\n\n"
        "| Step | When |\n|---|---|\n| Refund | 5 days |\n\n~~old~~ [policy](https://example.org/p)"
    )
    assert "<h1>Steps</h1>" in html
    assert "<ol>" in html
    assert "<strong>Open</strong>" in html
    assert "<em>My orders</em>" in html
    assert "<code>tracking</code>" in html
    assert "<table>" in html
    assert "<td>Refund</td>" in html
    assert "<del>old</del>" in html
    assert '<a href="https://example.org/p" rel="noopener noreferrer nofollow">policy</a>' in html


@pytest.mark.parametrize(
    "text",
    ["<b>bold</b> and <div onclick=x>div</div>", "<script>alert(1)</script>", "<!-- note -->"],
)
def test_raw_html_in_a_response_is_shown_as_written_not_run(text):
    """A reviewer must see that the answer contained HTML: it is escaped, never interpreted."""
    html = render_markdown(text)
    assert "<b>" not in html
    assert "<div" not in html
    assert "<script" not in html
    assert "&lt;" in html


@pytest.mark.parametrize(
    "link", ["[x](javascript:alert(1))", "[x](data:text/html,hi)", "[x](/relative)"]
)
def test_only_web_and_mail_links_survive(link):
    assert "href" not in render_markdown(link)


def test_images_are_dropped_so_pages_load_nothing_from_elsewhere():
    assert "<img" not in render_markdown("![logo](https://tracker.example.org/pixel.png)")


def test_deep_nesting_and_long_input_render_quickly_and_close_their_tags():
    html = render_markdown("> " * 2000 + "deep\n\n" + "*" * 100_000)
    assert html.count("<blockquote>") == html.count("</blockquote>")


def test_html_is_text_so_markdown_around_it_still_renders():
    html = render_markdown(
        "<b>Note</b> **read this**\n\n<div>\n*x*\n</div>\n\n`a<b` <https://x.org>"
    )
    assert "&lt;b&gt;Note&lt;/b&gt; <strong>read this</strong>" in html
    assert "&lt;div&gt;\n<em>x</em>" in html
    assert "<code>a&lt;b</code>" in html
    assert '<a href="https://x.org" rel="noopener noreferrer nofollow">https://x.org</a>' in html
    assert render_markdown("a \ufdd0 b") == "<p>a \ufffd b</p>\n"
