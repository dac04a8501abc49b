"""Reading pairs files (CSV or JSONL, wide or long form; see DESIGN.md "Pairs file").

Pure Python, no ORM. A file is read three times, each time streaming:

1. ``scan()``: SHA-256, UTF-8 validity (naming the line and byte of the first bad byte), NUL bytes,
   lines over 16 MB, empty files, line count (for progress).
2. ``rows(final=False)``: every row is checked (required columns, empty values, sizes,
   duplicates within the file, an item's fields agreeing across its rows) and yielded as a
   :class:`Row`, untyped.
   Problems are collected as ``FILE:LINE: column: message`` in ``errors``, rows with problems are
   not yielded. Also learns which metadata columns are numeric throughout.
3. ``rows(final=True)``, only after a clean pass 1: the same rows, read back from a spool file
   that pass 1 wrote (marshal, faster than parsing again, and exactly what was checked), CSV
   metadata typed (int or float where the whole column is numeric-looking, else strings; JSONL
   keeps JSON types).

Row limits: 1,000,000 rows, 1 MB per field, 200 characters per item id, system name and verdict.
"""

import codecs
import csv
import hashlib
import json
import marshal
import math
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError

MAX_ROWS = 1_000_000
MAX_FIELD_BYTES = 1024 * 1024
MAX_LINE_BYTES = 16 * MAX_FIELD_BYTES
MAX_NAME_LENGTH = 200
MAX_ERRORS = 200
VERDICTS = ("tie", "both_bad")
CHUNK = 1024 * 1024

WIDE_REQUIRED = ("item_id", "prompt", "system_a", "response_a", "system_b", "response_b")
LONG_REQUIRED = ("item_id", "prompt", "system", "response")
ITEM_TEXT = ("context", "reference", "auto_preference")
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

# Numbers as people write them; "007" and "0123" are identifiers, not numbers.
_INT = re.compile(r"[+-]?(?:0|[1-9]\d{0,17})", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:(?:0|[1-9]\d*)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?", re.ASCII)
_BAD_JSON_CHARS = re.compile("[\x00\ud800-\udfff]")
_ABSENT = -1

# csv refuses fields longer than this many characters; a field under 1 MB has fewer.
csv.field_size_limit(MAX_FIELD_BYTES)


class ImportFailed(ValidationError):
    """The file cannot be imported; ``errors`` are ``FILE:LINE: column: message`` strings."""

    def __init__(self, errors: list[str]):
        super().__init__(errors)
        self.errors = list(errors)


@dataclass(slots=True)
class ResponseRecord:
    system: str
    text: str
    metadata: dict


@dataclass(slots=True)
class Row:
    """One row of the file: an item and the response(s) on it (two in wide form, one in long)."""

    line: int
    item_id: str
    prompt: str
    context: str
    reference: str
    auto_preference: str
    item_metadata: dict
    responses: list[ResponseRecord]


class ErrorList:
    """Collects ``FILE:LINE: column: message`` errors; keeps the first MAX_ERRORS."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.items: list[tuple[int, int, str]] = []
        self.count = 0

    def add(self, line: int | None, message: str, column: str | None = None) -> None:
        self.count += 1
        if len(self.items) < MAX_ERRORS:
            where = self.filename if line is None else f"{self.filename}:{line}"
            text = f"{where}: {column}: {message}" if column else f"{where}: {message}"
            self.items.append((line or 0, self.count, text))

    def __bool__(self) -> bool:
        return self.count > 0

    def as_list(self) -> list[str]:
        more = self.count - len(self.items)
        tail = [f"{self.filename}: … and {more} more errors"] if more > 0 else []
        return [text for _line, _n, text in sorted(self.items)] + tail


@dataclass
class Column:
    """What one column (or JSON key) holds. ``side`` is 0 or 1 (A or B) for response columns."""

    name: str
    role: str  # item_id, prompt, context, reference, auto_preference, system, response,
    #            item_meta, response_meta, json_meta
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


def _as_tuple(row: Row) -> tuple:
    responses = [(r.system, r.text, r.metadata) for r in row.responses]
    return (row.line, row.item_id, row.prompt, row.context, row.reference, row.auto_preference,
            row.item_metadata, responses)  # fmt: skip


def _type_metadata(metadata: dict, side: int | None, numeric: set) -> None:
    for key, value in metadata.items():
        if (side, key) in numeric:
            metadata[key] = _number(value)


def _number(value: str) -> int | float:
    return int(value) if _INT.fullmatch(value) else float(value)


def _numeric_looking(value: str) -> bool:
    if value.isascii() and value.isdigit() and len(value) <= 18:  # most cells, no regex
        return value[0] != "0" or value == "0"
    if _INT.fullmatch(value):
        return True
    return _FLOAT.fullmatch(value) is not None and math.isfinite(float(value))


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is too large")
    return value


def _bad_strings(value) -> bool:
    """True if a JSON value holds a NUL character or a lone surrogate anywhere."""
    if isinstance(value, str):
        return _BAD_JSON_CHARS.search(value) is not None
    if isinstance(value, dict):
        return any(_bad_strings(k) or _bad_strings(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_bad_strings(v) for v in value)
    return False


class _CsvPlan:
    """Where each part of a row is, by column index (computed once per file)."""

    def __init__(self, columns: list[Column]) -> None:
        position = {column.role: index for index, column in enumerate(columns)}
        texts = ("item_id", "prompt", "context", "reference", "auto_preference")
        self.fields = [(name, position.get(name, _ABSENT)) for name in texts]
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


@dataclass
class _ItemSeen:
    line: int
    digests: tuple


@dataclass
class PairsFile:
    """A pairs file on disk, read in streaming passes (see the module docstring)."""

    path: Path
    filename: str
    errors: ErrorList = field(init=False)
    kind: str = field(init=False)  # "csv" | "jsonl"
    form: str | None = None
    columns: list[Column] = field(default_factory=list)
    sha256: str = ""
    size: int = 0
    n_lines: int = 0
    n_rows: int = 0
    n_responses: int = 0
    systems: set[str] = field(default_factory=set)
    item_ids: set[str] = field(default_factory=set)  # long form only (wide: one row per item)
    numeric: dict[int, bool] = field(default_factory=dict)
    preview_rows: int | None = None  # a preview stops after this many rows
    _scan_ok: bool = False
    _plan: "_CsvPlan | None" = None
    _spool: "tempfile._TemporaryFileWrapper | None" = None

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.errors = ErrorList(self.filename)
        suffix = Path(self.filename).suffix.lower()
        self.kind = "jsonl" if suffix in (".jsonl", ".ndjson", ".json") else "csv"

    @property
    def n_items(self) -> int:
        return self.n_rows if self.form == "wide" else len(self.item_ids)

    # Pass 0 -------------------------------------------------------------------------------------

    def scan(self) -> None:
        """Hash the file and check it is non-empty UTF-8 text with lines under 16 MB."""
        try:
            self._scan()
        except OSError as error:
            self.errors.add(None, f"cannot read the file ({error.strerror or error})")

    def _scan(self) -> None:
        digest = hashlib.sha256()
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        offset = newlines = run = 0
        content = False
        with self.path.open("rb") as binary:
            while chunk := binary.read(CHUNK):
                digest.update(chunk)
                if offset == 0 and chunk[:2] in (b"\xff\xfe", b"\xfe\xff"):
                    return self.errors.add(1, "the file is UTF-16; save it as UTF-8")
                if b"\x00" in chunk:
                    at = chunk.index(b"\x00")
                    line = newlines + chunk.count(b"\n", 0, at) + 1
                    return self.errors.add(line, f"NUL byte at byte {offset + at} of the file")
                pending = len(decoder.getstate()[0])
                try:
                    text = decoder.decode(chunk)
                except UnicodeDecodeError as error:
                    return self._bad_utf8(binary, offset - pending + error.start)
                if not content and text.lstrip("\ufeff \t\r\n"):
                    content = True
                first, last = chunk.find(b"\n"), chunk.rfind(b"\n")
                if (run + (len(chunk) if first < 0 else first)) > MAX_LINE_BYTES:
                    return self.errors.add(newlines + 1, "line longer than 16 MB")
                run = run + len(chunk) if first < 0 else len(chunk) - last - 1
                newlines += chunk.count(b"\n")
                offset += len(chunk)
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                return self._bad_utf8(binary, offset - len(decoder.getstate()[0]))
        if not content:
            return self.errors.add(1, "the file is empty")
        self.sha256, self.size, self.n_lines = digest.hexdigest(), offset, newlines + (run > 0)
        self._scan_ok = True
        return None

    def _bad_utf8(self, binary, position: int) -> None:
        binary.seek(0)
        before = binary.read(position)
        bad = binary.read(1)
        line = before.count(b"\n") + 1
        column = position - (before.rfind(b"\n") + 1) + 1
        self.errors.add(
            line,
            f"not UTF-8: byte 0x{bad.hex()} at byte {position} of the file "
            f"(byte {column} of the line); save the file as UTF-8",
        )

    # Passes 1 and 2 -----------------------------------------------------------------------------

    def rows(self, *, final: bool, progress: Callable[[int, float], None] | None = None):
        """Pass 1 (``final=False``): check the file, yield its valid rows untyped and keep them
        in a spool file. Pass 2 (``final=True``, after a clean pass 1): the spooled rows, typed."""
        if final:
            yield from self._spooled_rows()
            return
        if not self._scan_ok:
            return
        self._plan = None
        self.n_rows = self.n_responses = 0
        self.systems, self.item_ids, self.numeric = set(), set(), {}
        self._close_spool()
        if self.preview_rows is None:
            self._spool = tempfile.TemporaryFile(buffering=CHUNK)  # noqa: SIM115 - closed after pass 2
        reader = self._csv_rows if self.kind == "csv" else self._jsonl_rows
        with self.path.open(encoding="utf-8-sig", newline="") as handle:
            for row in reader(handle, progress):
                if self._spool is not None:
                    blob = marshal.dumps(_as_tuple(row))
                    self._spool.write(len(blob).to_bytes(4, "little") + blob)
                yield row

    def _spooled_rows(self) -> Iterator[Row]:
        """Pass 2 reads what pass 1 checked (not the file again, which may have changed since)."""
        if self._spool is None:
            return
        numeric = {
            (None if column.role == "item_meta" else column.side, column.key)
            for index, column in enumerate(self.columns)
            if self.numeric.get(index) and column.role in ("item_meta", "response_meta")
        }
        spool, read = self._spool, self._spool.read
        spool.seek(0)
        try:
            while header := read(4):
                line, item_id, prompt, context, reference, verdict, item_meta, responses = (
                    marshal.loads(read(int.from_bytes(header, "little")))  # noqa: S302 - our own file
                )
                if numeric:
                    _type_metadata(item_meta, None, numeric)
                    for side, (_system, _text, metadata) in enumerate(responses):
                        _type_metadata(metadata, side, numeric)
                yield Row(
                    line, item_id, prompt, context, reference, verdict, item_meta,
                    [ResponseRecord(*response) for response in responses],
                )  # fmt: skip
        finally:
            self._close_spool()

    def close(self) -> None:
        """Drop the spool file (pass 2 does this itself once it has read it)."""
        self._close_spool()

    def _close_spool(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def _csv_rows(self, handle, progress) -> Iterator[Row]:
        reader = csv.reader(handle, strict=True)
        header = None
        seen: dict = {}
        line = 0
        count = 0
        try:
            for values in reader:
                first_line, line = line + 1, reader.line_num
                if not values or (len(values) == 1 and not values[0].strip()):
                    continue
                if header is None:
                    header = self._header(values, first_line, jsonl=False)
                    if header is None:
                        return
                    continue
                count += 1
                if self._stop(count, first_line):
                    return
                if progress is not None and count % 2000 == 0:
                    progress(count, line / max(self.n_lines, 1))
                if len(values) != len(header):
                    self.errors.add(
                        first_line, f"{len(values)} fields, but the header has {len(header)}"
                    )
                    continue
                if max(map(len, values)) > MAX_FIELD_BYTES // 4:  # rare: the careful path
                    row = self._row(first_line, zip(header, values, strict=True), seen)
                else:
                    row = self._csv_row(first_line, values, seen)
                if row is not None:
                    yield row
        except csv.Error as error:
            message = str(error)
            if "field larger than field limit" in message:
                message = "a field is over 1 MB (is a closing quote missing?)"
            self.errors.add(line + 1, f"malformed CSV: {message}; reading stopped here")
            return
        if header is None:
            self.errors.add(1, "the file has no header row")
        elif count == 0:
            self.errors.add(line, "the file has a header but no rows")

    def _stop(self, count: int, line: int) -> bool:
        if self.preview_rows is not None and count > self.preview_rows:
            return True
        if count > MAX_ROWS:
            self.errors.add(line, f"more than {MAX_ROWS:,} rows; split the file")
            return True
        return False

    def _header(self, names: list[str], line: int, *, jsonl: bool) -> list[Column] | None:
        form, missing = detect_form(names)
        if missing:
            what = "key" if jsonl else "column"
            hint = (
                "wide form needs " + ", ".join(WIDE_REQUIRED)
                if form == "wide"
                else "long form needs " + ", ".join(LONG_REQUIRED)
                + "; wide form needs " + ", ".join(WIDE_REQUIRED)
            )  # fmt: skip
            for name in missing:
                self.errors.add(line, f"missing required {what} ({hint})", name)
            return None
        columns, problems = classify(names, form, jsonl=jsonl)
        for problem in problems:
            self.errors.add(line, problem)
        if problems:
            return None
        self.form, self.columns = form, columns
        return columns

    def _jsonl_rows(self, handle, progress) -> Iterator[Row]:
        seen: dict = {}
        layouts: dict[tuple, list[Column] | None] = {}
        count = 0
        line = 0
        for line, text in enumerate(handle, 1):
            if not text.strip():
                continue
            count += 1
            if self._stop(count, line):
                return
            if progress is not None and count % 2000 == 0:
                progress(count, line / max(self.n_lines, 1))
            try:
                obj = json.loads(
                    text.rstrip("\r\n"), parse_constant=_reject_constant, parse_float=_finite_float
                )
            except json.JSONDecodeError as error:
                self.errors.add(line, f"invalid JSON: {error.msg} at character {error.colno}")
                continue
            except (ValueError, RecursionError) as error:
                reason = str(error) if isinstance(error, ValueError) else "nested too deeply"
                self.errors.add(line, f"invalid JSON: {reason[:200]}")
                continue
            if not isinstance(obj, dict):
                self.errors.add(line, f"expected a JSON object, got {type(obj).__name__}")
                continue
            if "\\u" in text and _bad_strings(obj):
                self.errors.add(line, "a string holds \\u0000 or an unpaired surrogate")
                continue
            keys = tuple(obj)
            if keys not in layouts:
                layouts[keys] = self._json_layout(list(keys), line)
            columns = layouts[keys]
            if columns is not None:
                row = self._row(line, zip(columns, obj.values(), strict=True), seen)
                if row is not None:
                    yield row
        if count == 0:
            self.errors.add(max(line, 1), "the file has no rows")

    def _json_layout(self, names: list[str], line: int) -> list[Column] | None:
        if self.form is None:
            return self._header(names, line, jsonl=True)
        columns, problems = classify(names, self.form, jsonl=True)
        lowered = {name.strip().lower() for name in names}
        required = WIDE_REQUIRED if self.form == "wide" else LONG_REQUIRED
        problems += [f"{name}: missing (the file is in {self.form} form)"
                     for name in required if name not in lowered]  # fmt: skip
        if problems:
            for problem in problems:
                self.errors.add(line, problem)
            return None
        return columns

    # One row --------------------------------------------------------------------------------------

    def _csv_row(self, line: int, values: list[str], seen: dict) -> Row | None:
        """The common case, kept fast: a CSV row whose fields are all well under 1 MB."""
        plan = self._plan
        if plan is None:
            plan = self._plan = _CsvPlan(self.columns)
        values.append("")  # what an absent optional column reads as (index _ABSENT)
        fields = {name: values[index] for name, index in plan.fields}
        fields["item_id"] = fields["item_id"].strip()
        fields["auto_preference"] = fields["auto_preference"].strip()
        systems = [values[index].strip() for index in plan.systems]
        texts = [values[index] for index in plan.responses]
        item_meta: dict = {}
        response_meta: list[dict] = [{} for _ in plan.systems]
        numeric = self.numeric
        for index, side, key in plan.metadata:
            value = values[index]
            if not value:
                continue
            if numeric.get(index, True):
                numeric[index] = _numeric_looking(value)
            (item_meta if side is None else response_meta[side])[key] = value
        before = self.errors.count
        self._check_row(line, fields, systems, texts, set())
        if fields["item_id"] and all(systems):
            self._check_duplicates(line, fields, systems, item_meta, seen)
        if self.errors.count > before:
            return None
        self.n_rows += 1
        self.n_responses += len(systems)
        self.systems.update(systems)
        responses = [
            ResponseRecord(system, text, metadata)
            for system, text, metadata in zip(systems, texts, response_meta, strict=True)
        ]
        return Row(line, responses=responses, item_metadata=item_meta, **fields)

    def _row(self, line: int, cells, seen: dict) -> Row | None:
        errors = self.errors
        before = errors.count
        fields = {
            "item_id": "",
            "prompt": "",
            "context": "",
            "reference": "",
            "auto_preference": "",
        }
        sides = 2 if self.form == "wide" else 1
        systems, texts = [""] * sides, [""] * sides
        item_meta: dict = {}
        response_meta: list[dict] = [{} for _ in range(sides)]
        reported: set[str] = set()  # columns with an error already (no "empty" on top)
        for position, (column, value) in enumerate(cells):
            role = column.role
            if role == "json_meta":
                if value is None:
                    continue
                if not isinstance(value, dict):
                    errors.add(line, "must be a JSON object", column.name)
                    continue
                target = item_meta if column.key == "item" else response_meta[column.side]
                for key, item in value.items():
                    if key in target:
                        errors.add(line, f"metadata key “{key}” given twice", column.name)
                    target[key] = item
                continue
            if isinstance(value, str):
                if len(value) > MAX_FIELD_BYTES // 4 and len(value.encode()) > MAX_FIELD_BYTES:
                    errors.add(line, "field over 1 MB", column.name)
                    reported.add(column.name.lower())
            elif role in ("item_meta", "response_meta"):
                if value is None:
                    continue
            elif value is None:
                value = ""
            elif role == "item_id" and isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            else:
                errors.add(line, f"must be a string, not {_json_type(value)}", column.name)
                reported.add(column.name.lower())
                continue
            if role == "item_meta" or role == "response_meta":
                if isinstance(value, str):
                    if value == "":
                        continue
                    if self.kind == "csv" and self.numeric.get(position, True):
                        self.numeric[position] = _numeric_looking(value)
                target = item_meta if role == "item_meta" else response_meta[column.side]
                if column.key in target:
                    errors.add(line, f"metadata key “{column.key}” given twice", column.name)
                target[column.key] = value
            elif role == "system":
                systems[column.side] = value.strip()
            elif role == "response":
                texts[column.side] = value
            else:
                fields[role] = value.strip() if role in ("item_id", "auto_preference") else value
        self._check_row(line, fields, systems, texts, reported)
        if fields["item_id"] and all(systems):
            self._check_duplicates(line, fields, systems, item_meta, seen)
        if errors.count > before:
            return None
        self.n_rows += 1
        self.n_responses += sides
        self.systems.update(systems)
        responses = [
            ResponseRecord(system, text, metadata)
            for system, text, metadata in zip(systems, texts, response_meta, strict=True)
        ]
        return Row(line, responses=responses, item_metadata=item_meta, **fields)

    def _check_row(self, line: int, fields, systems, texts, reported: set[str]) -> None:
        def add(line: int, message: str, column: str) -> None:
            if column not in reported:
                self.errors.add(line, message, column)

        wide = self.form == "wide"
        if not fields["item_id"]:
            add(line, "empty", "item_id")
        elif len(fields["item_id"]) > MAX_NAME_LENGTH:
            add(line, f"longer than {MAX_NAME_LENGTH} characters", "item_id")
        if not fields["prompt"].strip():
            add(line, "empty", "prompt")
        for side, (system, text) in enumerate(zip(systems, texts, strict=True)):
            suffix = "_" + "ab"[side] if wide else ""
            if not system:
                add(line, "empty", "system" + suffix)
            elif len(system) > MAX_NAME_LENGTH:
                add(line, f"longer than {MAX_NAME_LENGTH} characters", "system" + suffix)
            if not text.strip():
                add(line, "empty", "response" + suffix)
        verdict = fields["auto_preference"]
        if len(verdict) > MAX_NAME_LENGTH:
            add(line, f"longer than {MAX_NAME_LENGTH} characters", "auto_preference")
        if wide and systems[0] and systems[0] == systems[1]:
            add(line, f"same system as system_a (“{systems[0]}”)", "system_b")
        elif wide and verdict and verdict not in (*systems, *VERDICTS):
            add(line, f"“{verdict}” is neither system_a, system_b, tie nor both_bad",
                "auto_preference")  # fmt: skip

    def _check_duplicates(self, line, fields, systems, item_meta, seen) -> None:
        item_id = fields["item_id"]
        if self.form == "wide":
            first = seen.get(item_id)
            if first is not None:
                self.errors.add(line, f"duplicate item_id “{item_id}” (also on line {first})",
                                "item_id")  # fmt: skip
            else:
                seen[item_id] = line
            return
        # Long form: one response per system and item; an item's fields agree across its rows.
        key = (item_id, systems[0])
        first = seen.get(key)
        if first is not None:
            self.errors.add(
                line, f"system “{systems[0]}” already answered item “{item_id}” on line {first}",
                "system",
            )  # fmt: skip
            return
        seen[key] = line
        digests = (
            hash(fields["prompt"]), hash(fields["context"]), hash(fields["reference"]),
            hash(fields["auto_preference"]), hash(tuple(sorted(map(repr, item_meta.items())))),
        )  # fmt: skip
        earlier = seen.get(item_id)
        if earlier is None:
            seen[item_id] = _ItemSeen(line, digests)
            self.item_ids.add(item_id)
            return
        names = ("prompt", "context", "reference", "auto_preference", "item metadata")
        given = (True, bool(fields["context"]), bool(fields["reference"]),
                 bool(fields["auto_preference"]), bool(item_meta))  # fmt: skip
        for name, mine, theirs, present in zip(names, digests, earlier.digests, given, strict=True):
            if present and mine != theirs:
                self.errors.add(
                    line, f"differs from line {earlier.line} for the same item “{item_id}”", name
                )


def _json_type(value) -> str:
    return {bool: "true/false", int: "a number", float: "a number", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)  # fmt: skip


@dataclass
class Preview:
    """The first rows of a file as the upload page shows them, before anything is imported."""

    form: str | None
    kind: str
    columns: list[tuple[str, str]]
    rows: list[dict]
    errors: list[str]


def preview(path: Path | str, filename: str, *, limit: int = 5) -> Preview:
    """Detected form, columns and roles, and the first ``limit`` rows (values shortened)."""
    pairs = PairsFile(Path(path), filename, preview_rows=limit)
    pairs._scan_ok = True
    rows: list[dict] = []
    try:
        for row in pairs.rows(final=False):
            rows.append(_preview_row(row))
            if len(rows) >= limit:
                break
    except UnicodeDecodeError as error:
        pairs.errors.add(None, f"not UTF-8 ({error.reason}); save the file as UTF-8")
    columns = [(c.name, c.describe(pairs.form)) for c in pairs.columns]
    return Preview(pairs.form, pairs.kind, columns, rows, pairs.errors.as_list())


def _preview_row(row: Row) -> dict:
    def short(text: str) -> str:
        return text if len(text) <= 160 else text[:159] + "…"

    return {
        "line": row.line,
        "item_id": row.item_id,
        "prompt": short(row.prompt),
        "responses": [(r.system, short(r.text)) for r in row.responses],
        "item_metadata": row.item_metadata,
    }


def validate(path: Path | str, filename: str, progress=None) -> PairsFile:
    """Scan and check the whole file (no database); raise ImportFailed listing every problem."""
    pairs = PairsFile(Path(path), filename)
    pairs.scan()
    for _row in pairs.rows(final=False, progress=progress):
        pass
    if pairs.errors:
        raise ImportFailed(pairs.errors.as_list())
    return pairs
