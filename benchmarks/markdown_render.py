"""Markdown renderers on ~1 KB LLM responses, and what rendering + sanitising + masking costs.

    python benchmarks/markdown_render.py [--responses 300] [--rounds 7]

Prints, per renderer that is installed (comrak, which evalsite uses; markdown-it-pyrs, used
before; cmarkgfm; pyromark), the median CPU time to render one response and how much the
process grew over 3,000 more renders (a renderer that keeps memory would grow a web worker
without bound). Then the whole path a grading page takes per response: before (Python re over
the raw Markdown, markdown-it-pyrs, nh3) and now (comrak, nh3, masking the rendered text with
the default patterns), with and without a name to mask. The limit in the same run: html.escape
of the same text (one pass over it in C, the least any page does with a response).
"""

import argparse
import html
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key-0123456789-abcdefghijkl")

RESPONSE = (
    "Thanks for reaching out about order **#{n}** — here is what you can do:\n\n"
    "1. Open *My orders* and check the tracking link.\n"
    "2. If the parcel shows as delivered, look around your door and ask your neighbours.\n"
    "3. Still nothing after 48 hours? Reply here and we’ll send a replacement.\n\n"
    "| Step | When |\n|---|---|\n| Tracking | now |\n| Replacement | after 48 h |\n\n"
    "```text\nOrder {n}: status <in transit>\n```\n\n"
    "Refunds go back to the original payment method within 5 to 10 working days; see "
    '[our refund policy](https://example.org/refunds "Refunds") for details. If you paid by '
    "gift card, the amount returns to the card at once. > Note: `keep your receipt`.\n\n"
    "- Tracking number: `TRK-{n}-X`\n- Carrier: ~~old carrier~~ new carrier\n\n"
    "If the tracking page has not changed for three days, the carrier may have lost the parcel; "
    "we open an investigation with them and keep you posted by email.\n\n"
    "Is there anything else I can help you with today?\n"
)
NAMED = RESPONSE + "\nAs an AI language model developed by Open\u00adAI, I am Clau*de*.\n"


def candidates() -> dict[str, Callable[[str], str]]:
    found: dict[str, Callable[[str], str]] = {}
    try:
        import comrak

        ext = comrak.ExtensionOptions()
        ext.table = ext.strikethrough = True
        render = comrak.RenderOptions()
        render.escape = True
        found["comrak 0.0.x (evalsite)"] = lambda t: comrak.render_markdown(
            t, extension_options=ext, render_options=render
        )
    except ImportError:
        pass
    try:
        from markdown_it_pyrs import MarkdownIt

        md = MarkdownIt("zero").enable_many(
            ["blockquote", "code", "fence", "heading", "hr", "lheading", "list", "paragraph",
             "reference", "autolink", "backticks", "emphasis", "entity", "escape", "image",
             "link", "newline", "table", "strikethrough"]
        )  # fmt: skip
        found["markdown-it-pyrs (before)"] = md.render
    except ImportError:
        print("markdown-it-pyrs: not installed (no wheel past 3.12); pip install it to compare")
    try:
        import cmarkgfm
        from cmarkgfm.cmark import Options

        found["cmarkgfm"] = lambda t: cmarkgfm.markdown_to_html_with_extensions(
            t, options=Options.CMARK_OPT_STRIKETHROUGH_DOUBLE_TILDE,
            extensions=["table", "strikethrough"],
        )  # fmt: skip
    except ImportError:
        print("cmarkgfm: not installed; pip install cmarkgfm to compare")
    try:
        import pyromark

        options = pyromark.Options.ENABLE_TABLES | pyromark.Options.ENABLE_STRIKETHROUGH
        found["pyromark"] = lambda t: pyromark.html(t, options=options)
    except ImportError:
        print("pyromark: not installed; pip install pyromark to compare")
    found["html.escape (the limit)"] = html.escape
    return found


def per_response_us(fn: Callable[[str], object], texts: list[str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        # CPU time of this process: on a shared machine, wall time mostly measures the others.
        start = time.process_time()
        for text in texts:
            fn(text)
        times.append((time.process_time() - start) / len(texts) * 1e6)
    return statistics.median(times)


def growth_kb(fn: Callable[[str], object], texts: list[str], renders: int = 3000) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for i in range(renders):
        fn(texts[i % len(texts)])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--responses", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    texts = [RESPONSE.format(n=n) for n in range(args.responses)]
    print(f"{len(texts)} responses of {len(texts[0]):,} characters, median of {args.rounds} rounds")
    for name, fn in candidates().items():
        fn(texts[0])
        us = per_response_us(fn, texts, args.rounds)
        grew = growth_kb(fn, texts)
        print(f"  render   {name:28} {us / 1000:7.4f} ms/response  grew {grew:>7,} KB")

    import django

    django.setup()
    from datasets.markdown import render_markdown
    from reviews.campaigns.masking import default_mask_patterns, masker
    from reviews.grading.services import masked_markdown

    mask = masker(default_mask_patterns(["nova-chat-2", "orbit-1"]))
    named = [NAMED.format(n=n) for n in range(args.responses)]
    assert "[masked]" in masked_markdown(named[0], mask)
    paths = []
    md = candidates().get("markdown-it-pyrs (before)")
    if md is not None:
        import re

        from datasets.markdown import _cleaner

        # The path before (issue #19): Python re over the raw Markdown, pattern by pattern, then
        # markdown-it-pyrs and nh3.
        old = [
            re.compile(p, re.I)
            for p in [rf"(?<!\w){re.escape(n)}(?!\w)" for n in ("nova-chat-2", "orbit-1")]
            + list(default_mask_patterns([]))
        ]

        def before(text: str) -> str:
            spans = sorted(m.span() for r in old for m in r.finditer(text))
            for start, end in reversed(spans):
                text = text[:start] + "[masked]" + text[end:]
            return _cleaner.clean(md(text))

        paths.append(("before: re mask + markdown-it-pyrs + nh3", before, texts))
    for label, fn, inputs in (
        *paths,
        ("render + nh3", render_markdown, texts),
        ("render + nh3 + mask, no match", lambda t: masked_markdown(t, mask), texts),
        ("render + nh3 + mask, names", lambda t: masked_markdown(t, mask), named),
    ):
        fn(inputs[0])
        us = per_response_us(fn, inputs, args.rounds)
        print(f"  page     {label:42} {us / 1000:7.4f} ms/response")


if __name__ == "__main__":
    main()
