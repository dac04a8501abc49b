"""Pairs files as Excel workbooks (.xlsx): the first sheet, its first non-empty row the header.

An .xlsx is a ZIP of XML parts, so before openpyxl reads a cell the workbook is checked the
cheap way: its parts may unpack to no more than the upload limit (a ZIP bomb is refused from
its directory, nothing is unpacked), and one streaming pass over the sheet's XML checks that no
row reaches past ``Limits.columns`` columns or past the row limit. Only then are the rows read,
with openpyxl in read-only (streaming) mode, as lists of strings; errors name the sheet row
(``pairs.xlsx:7: ...``), which is what the lead sees in Excel.
"""

import datetime
import hashlib
import re
import zipfile
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import BinaryIO
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse
from django.conf import settings

from datasets.importing.columns import MAX_ROWS, Limits, size_text
from datasets.importing.errors import ErrorList
from datasets.importing.file_checks import CHUNK, FileFacts

SUFFIXES = (".xlsx",)
UNREADABLE = (zipfile.BadZipFile, KeyError, ParseError, DefusedXmlException, OSError, EOFError)
_CELL_REF = re.compile(r"([A-Z]{1,7})(\d+)")


def check_workbook(
    source: Path | BinaryIO, errors: ErrorList, *, limits: Limits
) -> FileFacts | None:
    """Hash the workbook (a path, or an open upload) and check its shape without reading a
    value; None, with ``errors`` filled in, if it is refused."""
    digest, size = hashlib.sha256(), 0
    try:
        with _opened(source) as binary:
            binary.seek(0)
            while chunk := binary.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
            binary.seek(0)
            with zipfile.ZipFile(binary) as archive:
                rows = _check_archive(archive, errors, limits)
    except UNREADABLE as error:
        errors.add(None, f"not a readable .xlsx workbook ({error}); save it again from Excel")
        return None
    if rows is None:
        return None
    if rows == 0:
        errors.add(1, "the first sheet is empty")
        return None
    return FileFacts(digest.hexdigest(), size, rows)


def _opened(source: Path | BinaryIO):
    return Path(source).open("rb") if isinstance(source, str | Path) else nullcontext(source)


def _check_archive(archive: zipfile.ZipFile, errors: ErrorList, limits: Limits) -> int | None:
    unpacked = sum(info.file_size for info in archive.infolist())
    limit = settings.IMPORT_MAX_UPLOAD_BYTES
    if unpacked > limit:
        errors.add(None, f"the workbook unpacks to more than {size_text(limit)}; nothing was read")
        return None
    sheet = _first_sheet(archive)
    if sheet is None:
        errors.add(None, "the workbook has no worksheet")
        return None
    # ``iterparse`` keeps what it parsed: drop each row once counted, so memory stays flat.
    rows = last_row = 0
    sheet_data = None
    with archive.open(sheet) as source:
        for event, element in iterparse(source, events=("start", "end")):
            tag = element.tag.rsplit("}", 1)[-1]
            if event == "start":
                if tag == "sheetData":
                    sheet_data = element
                continue
            if tag != "row":
                continue
            row = int(element.get("r") or last_row + 1)
            last_row = row
            if row > MAX_ROWS + 1:
                errors.add(row, f"more than {MAX_ROWS:,} rows; split the file")
                return None
            widest = 0
            for position, cell in enumerate(element, 1):
                match = _CELL_REF.fullmatch(cell.get("r") or "")
                widest = max(widest, _column(match.group(1)) if match else position)
            if widest > limits.columns:
                errors.add(
                    row,
                    f"the row reaches column {widest:,}, past the limit of {limits.columns:,} "
                    "columns (the IMPORT_MAX_COLUMNS setting); nothing was read",
                )
                return None
            rows += len(element) > 0
            if sheet_data is not None:
                sheet_data.clear()
    return rows


def _first_sheet(archive: zipfile.ZipFile) -> str | None:
    names = archive.namelist()
    if "xl/worksheets/sheet1.xml" in names:
        return "xl/worksheets/sheet1.xml"
    sheets = sorted(name for name in names if name.startswith("xl/worksheets/sheet"))
    return sheets[0] if sheets else None


def _column(letters: str) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - 64
    return index


def sheet_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """The first sheet's rows as (sheet row, cells as text), empty rows left out."""
    from openpyxl import load_workbook  # only imports of spreadsheets pay for it

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        # Rows padded to the declared dimension could be as wide as the file claims: ignore it
        # (check_workbook bounded each row's real width).
        sheet.reset_dimensions()
        for number, values in enumerate(sheet.iter_rows(values_only=True), 1):
            cells = [_text(value) for value in values]
            while cells and cells[-1] == "":
                cells.pop()
            if cells:
                yield number, cells
    finally:
        workbook.close()


def _text(value) -> str:
    """A cell as the CSV export of the same sheet would write it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    return str(value)
