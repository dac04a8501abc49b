"""The columns of a pairs file (DESIGN.md "Pairs file"): limits, forms, each column's role."""

import math
import re
from dataclasses import dataclass

from django.conf import settings

MAX_ROWS = 1_000_000
# Defaults of the settable limits (settings IMPORT_MAX_*; see Limits).
MAX_FIELD_BYTES = 1024 * 1024
MAX_LINE_BYTES = 16 * MAX_FIELD_BYTES
MAX_COLUMNS = 200
MAX_METADATA_KEYS = 100
MAX_NAME_LENGTH = 200
VERDICTS = ("tie", "both_bad")
# A gold answer may also name the campaign's roles (DESIGN.md "Pairs file": gold).
GOLD_ROLES = ("baseline", "candidate")

WIDE_REQUIRED = ("item_id", "prompt", "system_a", "response_a", "system_b", "response_b")
LONG_REQUIRED = ("item_id", "prompt", "system", "response")
ITEM_TEXT = ("context", "reference", "auto_preference", "gold", "gold_note")
KNOWN = {*WIDE_REQUIRED, *LONG_REQUIRED, *ITEM_TEXT}
# JSONL objects merged into metadata, by form: key -> (owner, side).
JSON_METADATA = {
    "wide": {
        "metadata": ("item", None),
        "metadata_a": ("response", 0),
        "metadata_b": ("response", 1),
    },
    "long": {"metadata": ("item", None), "response_metadata": ("response", 0)},
}


@dataclass(frozen=True)
class Limits:
    """What one pairs file may hold. A file past any of them is refused before anything is
    saved: a crafted file (a million columns, a million metadata keys) would otherwise make
    every later page of its dataset slow."""

    columns: int = MAX_COLUMNS  # CSV columns, or top-level keys of a JSONL object
    metadata_keys: int = MAX_METADATA_KEYS  # per item and per response, after merging
    cell_bytes: int = MAX_FIELD_BYTES  # one CSV field, or one JSON string or metadata value
    line_bytes: int = MAX_LINE_BYTES  # one line of the file (one CSV record or JSONL object)

    @classmethod
    def from_settings(cls) -> "Limits":
        return cls(
            columns=getattr(settings, "IMPORT_MAX_COLUMNS", MAX_COLUMNS),
            metadata_keys=getattr(settings, "IMPORT_MAX_METADATA_KEYS", MAX_METADATA_KEYS),
            cell_bytes=getattr(settings, "IMPORT_MAX_CELL_BYTES", MAX_FIELD_BYTES),
            line_bytes=getattr(settings, "IMPORT_MAX_LINE_BYTES", MAX_LINE_BYTES),
        )


def size_text(n: int) -> str:
    """A byte count as people say it: 16 MB, 512 KB, 300 bytes."""
    for unit, size in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


# Numbers as people write them; "007" and "0123" are identifiers, not numbers.
_INT = re.compile(r"[+-]?(?:0|[1-9]\d{0,17})", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:(?:0|[1-9]\d*)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?", re.ASCII)
ABSENT = -1


@dataclass
class Column:
    """What one column (or JSON key) holds. ``side`` is 0 or 1 (A or B) for response columns."""

    name: str
    role: str  # item_id, prompt, context, reference, auto_preference, gold, gold_note, system,
    #            response, item_meta, response_meta, json_meta
    side: int | None = None
    key: str = ""  # the metadata key, or the JSON metadata object's owner

    def describe(self, form: str | None = "wide") -> str:
        side = "" if self.side is None or form != "wide" else " " + "AB"[self.side]
        if self.role == "item_meta":
            return f"item metadata “{self.key}”"
        if self.role == "response_meta":
            return f"response{side} metadata “{self.key}”"
        if self.role == "json_meta":
            return "item metadata (object)" if self.key == "item" else f"response{side} metadata"
        return self.role.replace("_", " ") + side


def detect_form(names: list[str]) -> tuple[str, list[str]]:
    """The form these column names are in ("wide" or "long"), and its required columns missing."""
    lowered = {name.strip().lower() for name in names}
    if {"system_a", "response_a", "system_b", "response_b"} & lowered:
        form, required = "wide", WIDE_REQUIRED
    else:
        form, required = "long", LONG_REQUIRED
    return form, [name for name in required if name not in lowered]


def classify(names: list[str], form: str, *, jsonl: bool = False) -> tuple[list[Column], list[str]]:
    """The role of each column, and problems with the header (duplicate names, clashing keys)."""
    columns, problems, seen, meta_keys = [], [], set(), {}
    for position, raw in enumerate(names, 1):
        name = raw.strip()
        lowered = name.lower()
        if not name:
            problems.append(f"column {position} has no name")
        elif lowered in seen:
            problems.append(f"column “{name}” appears twice")
        seen.add(lowered)
        if lowered in KNOWN:
            if form == "wide" and lowered[-2:] in ("_a", "_b"):
                column = Column(name, lowered[:-2], "ab".index(lowered[-1]))
            elif form == "long" and lowered in ("system", "response"):
                column = Column(name, lowered, 0)
            elif lowered in ("system", "response", *WIDE_REQUIRED[2:]):
                column = _metadata_column(name, form)  # the other form's columns are metadata
            else:
                column = Column(name, lowered)
        elif jsonl and lowered in JSON_METADATA[form]:
            owner, side = JSON_METADATA[form][lowered]
            column = Column(name, "json_meta", side, owner)
        else:
            column = _metadata_column(name, form)
        if column.role in ("item_meta", "response_meta"):
            slot = (column.role, column.side, column.key)
            if slot in meta_keys:
                problems.append(
                    f"columns “{meta_keys[slot]}” and “{name}” are both {column.describe()}"
                )
            meta_keys[slot] = name
            if not column.key:
                problems.append(f"column “{name}” gives an empty metadata key")
        columns.append(column)
    return columns, problems


def _metadata_column(name: str, form: str) -> Column:
    if name.lower().startswith("item."):
        return Column(name, "item_meta", None, name[5:])
    if form == "wide":
        suffix = name[-2:].lower()
        if suffix in ("_a", "_b") and len(name) > 2:
            return Column(name, "response_meta", "ab".index(suffix[1]), name[:-2])
        return Column(name, "item_meta", None, name)
    return Column(name, "response_meta", 0, name)


def number(value: str) -> int | float:
    """A numeric-looking CSV cell as the number it writes."""
    return int(value) if _INT.fullmatch(value) else float(value)


def numeric_looking(value: str) -> bool:
    """A CSV cell a spreadsheet would read as a number (finite; not "007")."""
    if value.isascii() and value.isdigit() and len(value) <= 18:  # most cells, no regex
        return value[0] != "0" or value == "0"
    if _INT.fullmatch(value):
        return True
    return _FLOAT.fullmatch(value) is not None and math.isfinite(float(value))


class CsvPlan:
    """Where each part of a row is, by column index (computed once per file)."""

    def __init__(self, columns: list[Column]) -> None:
        position = {column.role: index for index, column in enumerate(columns)}
        texts = (
            "item_id",
            "prompt",
            "context",
            "reference",
            "auto_preference",
            "gold",
            "gold_note",
        )
        self.fields = [(name, position.get(name, ABSENT)) for name in texts]
        sides = sorted(
            (column.side or 0, index)
            for index, column in enumerate(columns)
            if column.role == "system"
        )
        self.systems = [index for _side, index in sides]
        self.responses = [
            index
            for _side, index in sorted(
                (column.side or 0, index)
                for index, column in enumerate(columns)
                if column.role == "response"
            )
        ]
        self.metadata = [
            (index, None if column.role == "item_meta" else column.side, column.key)
            for index, column in enumerate(columns)
            if column.role in ("item_meta", "response_meta")
        ]
