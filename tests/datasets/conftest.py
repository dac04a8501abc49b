"""Helpers for the datasets tests: writing pairs files."""

import csv
import io
import json

import pytest

WIDE_HEADER = ["item_id", "prompt", "system_a", "response_a", "system_b", "response_b"]


def wide_rows(n: int, *, start: int = 1, a: str = "gpt-4", b: str = "gpt-4o") -> list[dict]:
    return [
        {
            "item_id": f"T-{i:04d}",
            "prompt": f"My order #{i} has not arrived. What can I do?",
            "system_a": a,
            "response_a": f"Sorry about that. **Step 1**: check tracking for order {i}.",
            "system_b": b,
            "response_b": f"I can help with order {i}.\n\n- Check the tracking page\n- Wait a day",
            "category": "shipping" if i % 2 else "billing",
            "latency_ms_a": str(100 + i),
            "latency_ms_b": str(80 + i),
        }
        for i in range(start, start + n)
    ]


def csv_text(rows: list[dict], header: list[str] | None = None) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header or list(rows[0]))  # CRLF, like Excel
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def jsonl_text(objects: list[dict]) -> str:
    return "".join(json.dumps(obj) + "\n" for obj in objects)


@pytest.fixture
def write(tmp_path):
    """``write(name, content)`` stores text (UTF-8) or bytes under tmp_path and returns the path."""

    def writer(name: str, content: str | bytes):
        path = tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return writer
