"""Reading pairs files (CSV or JSONL, wide or long form; see DESIGN.md "Pairs file").

Pure Python, no ORM. :meth:`PairsFile.scan` checks the bytes (``file_checks``: hash, UTF-8, no
archives or binary files); then the file is read as rows, streaming:

- ``rows(final=False)``: every row is checked (``row_checks``) and the valid ones are yielded
  untyped; problems are collected as ``FILE:LINE: column: message`` in ``errors``. Learns
  which CSV metadata columns are numeric throughout, and keeps the rows in a spool file.
- ``rows(final=True)``, after a clean first pass: the same rows read back from the spool (marshal,
  faster than parsing again, and exactly what was checked), CSV metadata typed (int or float where
  the whole column is numeric-looking, else strings; JSONL keeps JSON types).
- ``rows(final=False, typing=True, spool=False)``: the one-pass import of a new dataset. Rows come
  typed as they are read, optimistically (a column numeric so far is numeric); ``retype`` says
  when that guess proved wrong, and the caller then starts over with the two passes above.

Excel workbooks (.xlsx, ``datasets.importing.spreadsheets``) are read as CSV rows are, their
first sheet's rows numbered as Excel numbers them.

Limits: 1,000,000 rows, 200 characters per item id, system name and verdict; and the settable
``Limits`` (columns, metadata keys, cell and line sizes), checked before a row is parsed where
they can be (the header's columns are counted without splitting it).
"""

import csv
import json
import marshal
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from datasets.importing.columns import (
    LONG_REQUIRED,
    MAX_FIELD_BYTES,
    MAX_LINE_BYTES,
    MAX_NAME_LENGTH,
    MAX_ROWS,
    WIDE_REQUIRED,
    Column,
    CsvPlan,
    Limits,
    classify,
    detect_form,
    number,
    size_text,
)
from datasets.importing.errors import MAX_ERRORS, ErrorList, ImportFailed
from datasets.importing.file_checks import (
    check_file,
    check_header,
    count_json_keys,
    read_header,
)
from datasets.importing.row_checks import (
    ResponseRecord,
    Row,
    RowChecks,
    _bad_strings,
    _finite_float,
    _reject_constant,
)
from datasets.importing.spreadsheets import SUFFIXES as SPREADSHEET_SUFFIXES
from datasets.importing.spreadsheets import check_workbook, sheet_records

__all__ = [
    "MAX_ERRORS",
    "MAX_FIELD_BYTES",
    "MAX_LINE_BYTES",
    "MAX_NAME_LENGTH",
    "MAX_ROWS",
    "WIDE_REQUIRED",
    "Column",
    "ErrorList",
    "ImportFailed",
    "PairsFile",
    "Preview",
    "ResponseRecord",
    "Row",
    "classify",
    "detect_form",
    "preview",
    "validate",
]

CHUNK = 1024 * 1024


@dataclass
class PairsFile(RowChecks):
    """A pairs file on disk, read in streaming passes (see the module docstring)."""

    path: Path
    filename: str
    errors: ErrorList = field(init=False)
    kind: str = field(init=False)  # "csv" | "jsonl" | "xlsx"
    limits: Limits = field(default_factory=Limits.from_settings)
    delimiter: str = ","
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
    typing: bool = False
    typed_columns: set[int] = field(default_factory=set)
    retype: bool = False
    late_gold: dict[str, tuple[str, str]] = field(default_factory=dict)
    _scan_ok: bool = False
    _plan: CsvPlan | None = None
    _spool: "tempfile._TemporaryFileWrapper | None" = None

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.errors = ErrorList(self.filename)
        suffix = Path(self.filename).suffix.lower()
        self.kind = "jsonl" if suffix in (".jsonl", ".ndjson", ".json") else "csv"
        if suffix in SPREADSHEET_SUFFIXES:
            self.kind = "xlsx"

    @property
    def n_items(self) -> int:
        return self.n_rows if self.form == "wide" else len(self.item_ids)

    # Pass 0 -------------------------------------------------------------------------------------

    def scan(self) -> None:
        """Hash the file and check it: non-empty UTF-8 text with lines within the limit and a
        header within the column limit; or a workbook whose sheet is within the limits."""
        if self.kind == "xlsx":
            facts = check_workbook(self.path, self.errors, limits=self.limits)
        else:
            facts = check_file(self.path, self.errors, max_line_bytes=self.limits.line_bytes)
        if facts is not None:
            self.sha256, self.size, self.n_lines = facts.sha256, facts.size, facts.n_lines
            self._scan_ok = self.kind == "xlsx" or self.sniff()

    def sniff(self) -> bool:
        """Read the header line alone: the CSV delimiter, and no more columns than allowed."""
        if self.kind == "xlsx":
            return True
        with self.path.open("rb") as binary:
            header = read_header(binary, max_bytes=self.limits.line_bytes)
        delimiter = check_header(header, kind=self.kind, errors=self.errors, limits=self.limits)
        self.delimiter = delimiter or ","
        return delimiter is not None

    # Reading rows -------------------------------------------------------------------------------

    def rows(
        self,
        *,
        final: bool,
        progress: Callable[[int, float], None] | None = None,
        typing: bool = False,
        spool: bool = True,
    ) -> Iterator[Row]:
        """Pass 1 (``final=False``): check the file, yield its valid rows untyped and keep them
        in a spool file. Pass 2 (``final=True``, after a clean pass 1): the spooled rows, typed.
        ``typing=True, spool=False``: one pass, rows typed optimistically (see ``retype``)."""
        if final:
            yield from self._spooled_rows()
            return
        if not self._scan_ok:
            return
        self._plan = None
        self.n_rows = self.n_responses = 0
        self.systems, self.item_ids, self.numeric = set(), set(), {}
        self.typing, self.typed_columns, self.retype = typing, set(), False
        self.late_gold = {}
        self._close_spool()
        if self.preview_rows is None and spool:
            self._spool = tempfile.TemporaryFile(buffering=CHUNK)  # noqa: SIM115 - closed after pass 2
        if self.kind == "xlsx":
            rows = self._table_rows(self._xlsx_records(), progress)
        elif self.kind == "csv":
            rows = self._table_rows(self._csv_records(), progress)
        else:
            rows = self._jsonl_rows(progress)
        with closing(rows):
            for row in rows:
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
                record = marshal.loads(read(int.from_bytes(header, "little")))  # noqa: S302 - our own file
                line, item_id, prompt, context, reference, verdict, item_meta, responses = record[
                    :8
                ]
                gold, gold_note = record[8:]
                if numeric:
                    _type_metadata(item_meta, None, numeric)
                    for side, (_system, _text, metadata) in enumerate(responses):
                        _type_metadata(metadata, side, numeric)
                yield Row(
                    line, item_id, prompt, context, reference, verdict, item_meta,
                    [ResponseRecord(*response) for response in responses], gold, gold_note,
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

    def _csv_records(self) -> Iterator[tuple[int, int, list[str]]]:
        """(first line, last line, fields) of each CSV record."""
        # csv refuses fields longer than this many characters; a field within the byte limit
        # has no more.
        csv.field_size_limit(self.limits.cell_bytes)
        with self.path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, strict=True, delimiter=self.delimiter)
            line = 0
            for values in reader:
                first_line, line = line + 1, reader.line_num
                yield first_line, line, values

    def _xlsx_records(self) -> Iterator[tuple[int, int, list[str]]]:
        """(sheet row, sheet row, cells) of each non-empty row, with the cell and row limits
        that CSV's reader and byte checks apply to a text file."""
        width = None
        for row_number, cells in sheet_records(self.path):
            if width is None:
                width = len(cells)
            elif len(cells) < width:
                cells += [""] * (width - len(cells))  # Excel does not store trailing blanks
            lengths = list(map(len, cells))
            if max(lengths) > self.limits.cell_bytes // 4 and any(
                len(cell.encode()) > self.limits.cell_bytes for cell in cells
            ):
                self.errors.add(row_number, f"a cell is over {size_text(self.limits.cell_bytes)}")
                continue
            if sum(lengths) > self.limits.line_bytes // 4 and (
                sum(len(cell.encode()) for cell in cells) > self.limits.line_bytes
            ):
                self.errors.add(row_number, f"row longer than {size_text(self.limits.line_bytes)}")
                continue
            yield row_number, row_number, cells

    def _table_rows(self, records, progress) -> Iterator[Row]:
        header = None
        seen: dict = {}
        line = 0
        count = 0
        try:
            for first_line, line, values in records:
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
                if max(map(len, values)) > self.limits.cell_bytes // 4:  # rare: careful path
                    row = self._row(first_line, zip(header, values, strict=True), seen)
                else:
                    row = self._csv_row(first_line, values, seen)
                if row is not None:
                    yield row
        except csv.Error as error:
            message = str(error)
            if "field larger than field limit" in message:
                limit = size_text(self.limits.cell_bytes)
                message = f"a field is over {limit} (is a closing quote missing?)"
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
        problems += self._metadata_column_problems(columns, form, jsonl=jsonl)
        for problem in problems:
            self.errors.add(line, problem)
        if problems:
            return None
        self.form, self.columns = form, columns
        return columns

    def _metadata_column_problems(
        self, columns: list[Column], form: str, *, jsonl: bool
    ) -> list[str]:
        """More metadata columns for the item, or for one response, than the key limit."""
        owners = Counter(
            "item" if column.role == "item_meta" else column.describe(form).split(" metadata")[0]
            for column in columns
            if column.role in ("item_meta", "response_meta")
        )
        limit = self.limits.metadata_keys
        long_names = [
            f"{'key' if jsonl else 'column'} {position}: a metadata key is longer than "
            f"{MAX_NAME_LENGTH} characters"
            for position, column in enumerate(columns, 1)
            if column.role in ("item_meta", "response_meta") and len(column.key) > MAX_NAME_LENGTH
        ]
        return long_names + [
            f"{n:,} metadata columns for the {owner}, more than the limit of {limit:,} "
            "(the IMPORT_MAX_METADATA_KEYS setting)"
            for owner, n in owners.items()
            if n > limit
        ]

    def _jsonl_rows(self, progress) -> Iterator[Row]:
        with self.path.open(encoding="utf-8-sig", newline="") as handle:
            yield from self._jsonl_handle_rows(handle, progress)

    def _jsonl_handle_rows(self, handle, progress) -> Iterator[Row]:
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
            if (
                len(text) > 65536
                and count_json_keys(text, self.limits.columns) > self.limits.columns
            ):
                # Counted before parsing: a line of a million keys would take ~150 MB to parse.
                self.errors.add(line, f"more than {self.limits.columns:,} keys, the limit "
                                "(the IMPORT_MAX_COLUMNS setting)")  # fmt: skip
                continue
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
            if len(obj) > self.limits.columns:
                self.errors.add(
                    line,
                    f"{len(obj):,} keys, more than the limit of {self.limits.columns:,} "
                    "(the IMPORT_MAX_COLUMNS setting)",
                )
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


def _as_tuple(row: Row) -> tuple:
    responses = [(r.system, r.text, r.metadata) for r in row.responses]
    return (row.line, row.item_id, row.prompt, row.context, row.reference, row.auto_preference,
            row.item_metadata, responses, row.gold, row.gold_note)  # fmt: skip


def _type_metadata(metadata: dict, side: int | None, numeric: set) -> None:
    for key, value in metadata.items():
        if (side, key) in numeric:
            metadata[key] = number(value)


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
    if pairs.kind == "xlsx":
        pairs.scan()  # the workbook's bounds, before openpyxl reads a row
    else:
        pairs._scan_ok = pairs.sniff()
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
