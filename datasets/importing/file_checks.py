"""Byte-level checks of an uploaded pairs file, before any parsing: is it UTF-8 text at all?

Refuses archives and compressed files (a ZIP or gzip renamed ``.csv``: nothing is ever unpacked,
so a zip bomb is just another refused file), binary files (images, PDFs, spreadsheets, NUL
bytes), UTF-16/UTF-32, bytes that are not UTF-8 (naming the line and byte), lines over the
line limit (16 MB by default) and empty files. Used by the upload form (on the upload's chunks)
and by every import (on the file).

Then the header line, still before any parsing (``check_header``): which delimiter a CSV uses
(comma, semicolon or tab) and whether it has more columns than allowed, counted without
splitting the line, so a 10 MB header of a million columns is refused in milliseconds.
"""

import codecs
import csv
import hashlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from datasets.importing.columns import MAX_LINE_BYTES, Limits, detect_form, size_text
from datasets.importing.errors import ErrorList

CHUNK = 1024 * 1024
# Excel writes ";" where the decimal separator is a comma (most of Europe); some tools write tabs.
DELIMITERS = (",", ";", "\t")

# What a file that is not text starts with (offset 0), and what to call it.
SIGNATURES = (
    (b"PK\x03\x04", "a ZIP archive (or an .xlsx/.docx, which are ZIP archives)"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"PK\x07\x08", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"BZh", "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"\x28\xb5\x2f\xfd", "a Zstandard-compressed file"),
    (b"\x04\x22\x4d\x18", "an LZ4-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document (.xls/.doc)"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"PAR1", "a Parquet file"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "a Windows executable"),
)
UTF32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@dataclass
class FileFacts:
    """What a clean check learned: the SHA-256, size in bytes and number of lines."""

    sha256: str = ""
    size: int = 0
    n_lines: int = 0


def check_file(
    path: Path, errors: ErrorList, *, max_line_bytes: int = MAX_LINE_BYTES
) -> FileFacts | None:
    """Check and hash the file at ``path``; None (and ``errors`` filled in) if it is refused."""
    try:
        with Path(path).open("rb") as binary:
            chunks = iter(lambda: binary.read(CHUNK), b"")
            return check_chunks(chunks, errors, max_line_bytes=max_line_bytes)
    except OSError as error:
        errors.add(None, f"cannot read the file ({error.strerror or error})")
        return None


def check_chunks(
    chunks: Iterable[bytes], errors: ErrorList, *, max_line_bytes: int = MAX_LINE_BYTES
) -> FileFacts | None:
    """The checks over a file given as byte chunks (a path's, or an upload's ``chunks()``)."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = newlines = run = 0
    content = False
    # The bytes since the last newline, to name the byte of the line when decoding fails.
    line_start = b""
    for chunk in chunks:
        if not chunk:
            continue
        if offset == 0 and (problem := _not_text(chunk)):
            errors.add(None, f"this is {problem}, not a CSV or JSONL text file; nothing was read")
            return None
        digest.update(chunk)
        if b"\x00" in chunk:
            at = chunk.index(b"\x00")
            line = newlines + chunk.count(b"\n", 0, at) + 1
            errors.add(
                line, f"NUL byte at byte {offset + at} of the file: a binary file, not UTF-8 text"
            )
            return None
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError:
            _bad_utf8(errors, line_start + chunk, offset - len(line_start), newlines)
            return None
        if not content and text.lstrip("\ufeff \t\r\n"):
            content = True
        first, last = chunk.find(b"\n"), chunk.rfind(b"\n")
        if (run + (len(chunk) if first < 0 else first)) > max_line_bytes:
            errors.add(newlines + 1, f"line longer than {size_text(max_line_bytes)}")
            return None
        if first >= 0 and last - first > max_line_bytes:  # a limit below the chunk size
            lengths = [len(line) for line in chunk[first + 1 : last].split(b"\n")]
            if max(lengths) > max_line_bytes:
                at = next(n for n, length in enumerate(lengths) if length > max_line_bytes)
                line = newlines + 2 + at
                errors.add(line, f"line longer than {size_text(max_line_bytes)}")
                return None
        run = run + len(chunk) if first < 0 else len(chunk) - last - 1
        line_start = chunk[last + 1 :] if first >= 0 else line_start + chunk
        newlines += chunk.count(b"\n")
        offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        _bad_utf8(errors, line_start, offset - len(line_start), newlines)
        return None
    if not content:
        errors.add(1, "the file is empty")
        return None
    return FileFacts(digest.hexdigest(), offset, newlines + (run > 0))


def _not_text(head: bytes) -> str | None:
    """What the file is, judging by its first bytes, when that is not UTF-8 text."""
    if head.startswith(UTF32_BOMS):
        return "UTF-32 text (save it as UTF-8)"
    if head.startswith(UTF16_BOMS):
        return "UTF-16 text (save it as UTF-8)"
    for magic, name in SIGNATURES:
        if head.startswith(magic):
            return name
    if len(head) > 262 and head[257:262] == b"ustar":
        return "a tar archive"
    sample = head[:1024]
    if len(sample) >= 8 and (sample[1::2].count(0) > len(sample) // 4 or
                             sample[0::2].count(0) > len(sample) // 4):  # fmt: skip
        return "UTF-16 text without a byte-order mark (save it as UTF-8)"
    return None


def _bad_utf8(errors: ErrorList, data: bytes, base: int, newlines: int) -> None:
    """Report the first byte that is not UTF-8 in ``data``: bytes from the start of a line (at
    file offset ``base``, after ``newlines`` newlines) up to and including the failing chunk."""
    try:
        data.decode("utf-8")
        position = len(data)  # not reached: the caller saw the decoder fail
    except UnicodeDecodeError as error:
        position = error.start
    before = data[:position]
    line = newlines + before.count(b"\n") + 1
    column = position - (before.rfind(b"\n") + 1) + 1
    bad = data[position : position + 1]
    errors.add(
        line,
        f"not UTF-8: byte 0x{bad.hex()} at byte {base + position} of the file "
        f"(byte {column} of the line); save the file as UTF-8",
    )


def read_header(handle: BinaryIO, *, max_bytes: int) -> tuple[int, str] | None:
    """The first non-blank line of a file: its number and text (BOM and line end removed),
    read no further than ``max_bytes``. None for a file of blank lines."""
    for number in itertools.count(1):
        raw = handle.readline(max_bytes + 1)
        if not raw:
            return None
        text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
        if text.strip():
            return number, text.rstrip("\r\n")
    return None  # not reached


def count_fields(line: str, delimiter: str, stop: int) -> int:
    """How many fields a CSV line holds (quoted delimiters do not count), counting no further
    than about ``stop``: string scans in C, never a list of the fields."""
    n, at, end = 1, 0, len(line)
    while at < end and n <= stop:
        quote = line.find('"', at)
        n += line.count(delimiter, at, end if quote < 0 else quote)
        if quote < 0:
            break
        closing = line.find('"', quote + 1)  # a doubled "" closes and reopens: same result
        if closing < 0:
            break
        at = closing + 1
    return n


def count_json_keys(line: str, stop: int) -> int:
    """How many keys the JSON object on ``line`` has at its top level, counting no further than
    ``stop + 1``: strings are skipped with ``str.find``, never decoded, so a crafted line of a
    million keys costs what its first ``stop`` keys cost. Malformed JSON counts loosely (the
    parser reports it)."""
    keys = depth = at = 0
    end = len(line)
    while at < end and keys <= stop:
        quote = line.find('"', at)
        for char in line[at : end if quote < 0 else quote]:
            if char in "{[":
                depth += 1
            elif char in "}]":
                depth -= 1
            elif char == ":" and depth == 1:
                keys += 1
        if quote < 0:
            break
        closing = line.find('"', quote + 1)
        while closing > 0 and _escaped(line, closing):
            closing = line.find('"', closing + 1)
        if closing < 0:
            break
        at = closing + 1
    return keys


def _escaped(line: str, position: int) -> bool:
    backslashes = 0
    while line[position - 1 - backslashes] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def check_header(
    header: tuple[int, str] | None, *, kind: str, errors: ErrorList, limits: Limits
) -> str | None:
    """The CSV delimiter the header uses (the one that yields the required columns, else the
    one that yields most columns, comma on a tie); None, with an error, when the header has more
    columns (CSV) or keys (JSONL) than ``limits.columns``."""
    if header is None:
        return ","  # an empty file: reported by the reader
    line, text = header
    if kind == "jsonl":
        if count_json_keys(text, limits.columns) > limits.columns:
            errors.add(line, _too_many(limits.columns, "keys"))
            return None
        return ","
    counts = {delimiter: count_fields(text, delimiter, limits.columns) for delimiter in DELIMITERS}
    for delimiter in DELIMITERS:
        if 1 < counts[delimiter] <= limits.columns:
            try:
                names = next(csv.reader([text], delimiter=delimiter))
            except csv.Error:  # a malformed header: reported, with its line, by the reader
                continue
            if not detect_form(names)[1]:
                return delimiter
    best = max(DELIMITERS, key=counts.__getitem__)
    if counts[best] > limits.columns:
        errors.add(line, _too_many(limits.columns, "columns"))
        return None
    return best


def _too_many(limit: int, what: str) -> str:
    return (
        f"the header has more than {limit:,} {what}; nothing was read (the limit is the "
        "IMPORT_MAX_COLUMNS setting)"
    )
