"""The pairs-file reader: forms, metadata, and errors naming FILE:LINE and column."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets.importing import errors as import_errors
from datasets.importing import parsing as importers
from datasets.importing.parsing import ImportFailed, validate

from .conftest import csv_text, jsonl_text, wide_rows


def rows_of(path, name=None):
    pairs = validate(path, name or path.name)
    return pairs, list(pairs.rows(final=True))


def errors_of(path, name=None) -> list[str]:
    with pytest.raises(ImportFailed) as failure:
        validate(path, name or path.name)
    return failure.value.errors


def test_wide_csv_reads_items_responses_and_metadata(write):
    path = write("pairs.csv", csv_text(wide_rows(3)))

    pairs, rows = rows_of(path)

    assert pairs.form == "wide"
    assert (pairs.n_rows, pairs.n_items, pairs.n_responses) == (3, 3, 6)
    assert pairs.systems == {"gpt-4", "gpt-4o"}
    first = rows[0]
    assert (first.line, first.item_id) == (2, "T-0001")
    assert first.item_metadata == {"category": "shipping"}
    assert [(r.system, r.metadata) for r in first.responses] == [
        ("gpt-4", {"latency_ms": 101}),
        ("gpt-4o", {"latency_ms": 81}),
    ]


def test_metadata_is_numeric_only_when_the_whole_column_is(write):
    rows = wide_rows(3)
    rows[0]["latency_ms_a"] = "1.5"
    rows[1]["latency_ms_b"] = "n/a"
    rows[2]["category"] = "007"  # an identifier, not a number
    for row in rows:
        row["zip"] = "02134"
        row["arabic_digits"] = "\u0663"  # int() would take it; a spreadsheet would not
        row["huge"] = "9" * 5000
    path = write("pairs.csv", csv_text(rows))

    _, parsed = rows_of(path)

    assert parsed[0].item_metadata["arabic_digits"] == "\u0663"
    assert parsed[0].item_metadata["huge"] == "9" * 5000

    assert [r.responses[0].metadata["latency_ms"] for r in parsed] == [1.5, 102, 103]
    assert [r.responses[1].metadata["latency_ms"] for r in parsed] == ["81", "n/a", "83"]
    assert parsed[0].item_metadata["zip"] == "02134"


def test_long_jsonl_keeps_json_types_and_item_columns(write):
    objects = [
        {
            "item_id": 7,
            "prompt": "Reset my password",
            "system": name,
            "response": f"Answer from {name}",
            "latency_ms": 120,
            "documents": ["kb/12", "kb/40"],
            "item.region": "EU",
            "metadata": {"category": "account"},
        }
        for name in ("gpt-4", "gpt-4o", "claude")
    ]
    path = write("golden.jsonl", jsonl_text(objects))

    pairs, rows = rows_of(path)

    assert pairs.form == "long"
    assert (pairs.n_items, pairs.n_responses) == (1, 3)
    assert rows[0].item_id == "7"
    assert rows[0].item_metadata == {"region": "EU", "category": "account"}
    assert rows[0].responses[0].metadata == {"latency_ms": 120, "documents": ["kb/12", "kb/40"]}


def test_csv_with_bom_crlf_and_multiline_quoted_fields(write):
    path = write("pairs.csv", "\ufeff" + csv_text(wide_rows(2)))

    _, rows = rows_of(path)

    assert [row.line for row in rows] == [2, 6]  # each response_b spans four lines
    assert rows[0].responses[1].text.startswith("I can help")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("item_id,prompt,system,text\n1,p,s,r\n", "f.csv:1: response: missing required column"),
        (
            "item_id,prompt,system_a,response_a,system_b\n1,p,a,r,b\n",
            "f.csv:1: response_b: missing required column",
        ),
        ("item_id,prompt,system,response\n,p,s,r\n", "f.csv:2: item_id: empty"),
        ("item_id,prompt,system,response\n1,p,s,  \n", "f.csv:2: response: empty"),
        ("item_id,prompt,system,response\n1,p,s\n", "f.csv:2: 3 fields, but the header has 4"),
        (
            "item_id,prompt,system,response,x,x\n1,p,s,r,1,2\n",
            "f.csv:1: column “x” appears twice",
        ),
        ("", "f.csv:1: the file is empty"),
        ("\ufeff\n\n", "f.csv:1: the file is empty"),
        ("item_id,prompt,system,response\n", "f.csv:1: the file has a header but no rows"),
        ('item_id,prompt,system,response\n1,"p"x,s,r\n', "f.csv:2: malformed CSV"),
    ],
)
def test_csv_errors_name_line_and_column(write, content, expected):
    errors = errors_of(write("f.csv", content))

    assert any(error.startswith(expected) for error in errors), errors


def test_duplicate_item_in_wide_form_names_both_lines(write):
    rows = wide_rows(3)
    rows[2]["item_id"] = rows[0]["item_id"]

    errors = errors_of(write("f.csv", csv_text(rows)))

    # Each row spans four lines (response_b is a multi-line list).
    assert errors == ["f.csv:10: item_id: duplicate item_id “T-0001” (also on line 2)"]


def test_same_system_twice_in_wide_form(write):
    rows = wide_rows(1, a="gpt-4", b="gpt-4")

    assert errors_of(write("f.csv", csv_text(rows))) == [
        "f.csv:2: system_b: same system as system_a (“gpt-4”)"
    ]


def test_auto_preference_must_name_a_system_of_the_row(write):
    rows = wide_rows(3)
    rows[0]["auto_preference"] = "gpt-4o"
    rows[1]["auto_preference"] = "tie"
    rows[2]["auto_preference"] = "gemini"

    errors = errors_of(write("f.csv", csv_text(rows)))

    assert errors == [
        "f.csv:10: auto_preference: “gemini” is neither system_a, system_b, tie nor both_bad"
    ]


def test_a_system_answering_an_item_twice_in_long_form(write):
    content = jsonl_text(
        [
            {"item_id": "1", "prompt": "p", "system": "s", "response": "r1"},
            {"item_id": "1", "prompt": "p", "system": "t", "response": "r2"},
            {"item_id": "1", "prompt": "p", "system": "s", "response": "r3"},
        ]
    )

    assert errors_of(write("f.jsonl", content)) == [
        "f.jsonl:3: system: system “s” already answered item “1” on line 1"
    ]


def test_item_fields_must_agree_across_long_form_rows(write):
    content = jsonl_text(
        [
            {"item_id": "1", "prompt": "p", "system": "s", "response": "r", "context": "c"},
            {"item_id": "1", "prompt": "other", "system": "t", "response": "r"},
            {"item_id": "1", "prompt": "p", "system": "u", "response": "r", "context": "d"},
            {"item_id": "1", "prompt": "p", "system": "v", "response": "r"},  # context left out
        ]
    )

    assert errors_of(write("f.jsonl", content)) == [
        "f.jsonl:2: prompt: differs from line 1 for the same item “1”",
        "f.jsonl:3: context: differs from line 1 for the same item “1”",
    ]


def test_jsonl_errors_name_the_line(write):
    content = "\n".join(
        [
            '{"item_id": "1", "prompt": "p", "system": "s", "response": "r"}',
            '{"item_id": "2", "prompt": "p", "system": "s", "response": ',
            "[1, 2]",
            '{"item_id": "3", "prompt": 5, "system": "s", "response": "r"}',
            '{"item_id": "4", "prompt": "p", "system": "s", "response": "r", "x": NaN}',
            '{"item_id": "5", "prompt": "p", "system": "s", "response": "r\\u0000"}',
            '{"item_id": "6", "prompt": "p", "response": "r"}',
        ]
    )

    errors = errors_of(write("f.jsonl", content))

    assert errors == [
        "f.jsonl:2: invalid JSON: Expecting value at character 60",
        "f.jsonl:3: expected a JSON object, got list",
        "f.jsonl:4: prompt: must be a string, not a number",
        "f.jsonl:5: invalid JSON: NaN is not allowed",
        "f.jsonl:6: a string holds \\u0000 or an unpaired surrogate",
        "f.jsonl:7: system: missing (the file is in long form)",
    ]


def test_file_that_is_not_utf8_names_line_and_byte(write):
    content = "item_id,prompt,system,response\n1,caf\u00e9,s,r\n2,na\u00efve,s,r\n"
    raw = content.encode().replace("na\u00efve".encode(), b"na\xefve")

    errors = errors_of(write("f.csv", raw))

    offset = raw.index(b"\xef")
    assert errors == [
        f"f.csv:3: not UTF-8: byte 0xef at byte {offset} of the file (byte 5 of the line); "
        "save the file as UTF-8"
    ]


def test_utf16_and_nul_bytes_are_refused(write):
    utf16 = "item_id,prompt,system,response\n".encode("utf-16")
    assert errors_of(write("a.csv", utf16)) == [
        "a.csv: this is UTF-16 text (save it as UTF-8), not a CSV or JSONL text file; "
        "nothing was read"
    ]
    nul = b"item_id,prompt,system,response\n1,p\x00,s,r\n"
    assert errors_of(write("b.csv", nul)) == [
        "b.csv:2: NUL byte at byte 34 of the file: a binary file, not UTF-8 text"
    ]


def test_field_over_one_megabyte(write):
    big = "é" * (importers.MAX_FIELD_BYTES // 2 + 1)  # under 1 M characters, over 1 MB
    content = csv_text([{"item_id": "1", "prompt": "p", "system": "s", "response": big}])

    assert errors_of(write("f.csv", content)) == ["f.csv:2: response: field over 1 MB"]


def test_unclosed_quote_stops_with_a_clear_error(write):
    content = 'item_id,prompt,system,response\n1,"p,s,r\n' + "x" * importers.MAX_FIELD_BYTES

    errors = errors_of(write("f.csv", content))

    assert errors == [
        "f.csv:2: malformed CSV: a field is over 1 MB (is a closing quote missing?); "
        "reading stopped here"
    ]


def test_more_rows_than_the_limit(write, monkeypatch):
    monkeypatch.setattr(importers, "MAX_ROWS", 3)
    content = csv_text(
        [{"item_id": i, "prompt": "p", "system": "s", "response": "r"} for i in range(5)]
    )

    assert errors_of(write("f.csv", content)) == ["f.csv:5: more than 3 rows; split the file"]


def test_errors_are_capped_and_counted(write, monkeypatch):
    monkeypatch.setattr(import_errors, "MAX_ERRORS", 2)
    content = csv_text([{"item_id": "", "prompt": "p", "system": "s", "response": "r"}] * 5)

    errors = errors_of(write("f.csv", content))

    assert errors == [
        "f.csv:2: item_id: empty",
        "f.csv:3: item_id: empty",
        "f.csv: … and 3 more errors",
    ]


def test_preview_shows_form_columns_and_first_rows(write):
    path = write("pairs.csv", csv_text(wide_rows(8)))

    preview = importers.preview(path, "pairs.csv", limit=5)

    assert preview.form == "wide"
    assert ("latency_ms_a", "response A metadata “latency_ms”") in preview.columns
    assert ("category", "item metadata “category”") in preview.columns
    assert [row["item_id"] for row in preview.rows] == [f"T-000{i}" for i in range(1, 6)]
    assert preview.errors == []


# Property-based: whatever the bytes, the reader either accepts them or reports problems. -----

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
COLUMNS = [*importers.WIDE_REQUIRED, "system", "response", "context", "reference",
           "auto_preference", "category", "latency_a", "item.x", "metadata", ""]  # fmt: skip
cells = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", '"', '""', "\n", "\r\n", ",", "1", "-0.5", "1e999", "007", "\x00"]),
)


def read_everything(path, name) -> None:
    try:
        pairs = validate(path, name)
    except ImportFailed as failure:
        errors = failure.errors
    else:
        for row in pairs.rows(final=True):
            assert row.item_id
            assert row.prompt.strip()
            assert row.responses
        return
    assert errors
    assert all(error.startswith(name) for error in errors)


@SETTINGS
@given(content=st.binary(max_size=400))
def test_random_bytes_never_crash_the_reader(tmp_path, content):
    for name in ("x.csv", "x.jsonl"):
        (tmp_path / name).write_bytes(content)
        read_everything(tmp_path / name, name)


@SETTINGS
@given(
    header=st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=9),
    rows=st.lists(st.lists(cells, max_size=10), max_size=6),
)
def test_random_csv_never_crashes_the_reader(tmp_path, header, rows):
    lines = [",".join(header)] + [",".join(row) for row in rows]
    path = tmp_path / "x.csv"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    read_everything(path, "x.csv")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@SETTINGS
@given(objects=st.lists(st.dictionaries(st.sampled_from(COLUMNS), json_values), max_size=6))
def test_random_jsonl_never_crashes_the_reader(tmp_path, objects):
    path = tmp_path / "x.jsonl"
    text = "".join(json.dumps(obj, allow_nan=True) + "\n" for obj in objects)
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    read_everything(path, "x.jsonl")


safe_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=40
).filter(str.strip)


@SETTINGS
@given(
    texts=st.lists(st.tuples(safe_text, safe_text, safe_text), min_size=1, max_size=8),
    jsonl=st.booleans(),
)
def test_well_formed_rows_come_back_exactly(tmp_path, texts, jsonl):
    rows = [
        {"item_id": f"id-{n}", "prompt": prompt, "system_a": "a", "response_a": first,
         "system_b": "b", "response_b": second}
        for n, (prompt, first, second) in enumerate(texts)
    ]  # fmt: skip
    name = "x.jsonl" if jsonl else "x.csv"
    (tmp_path / name).write_text(jsonl_text(rows) if jsonl else csv_text(rows), encoding="utf-8")

    _, parsed = rows_of(tmp_path / name)

    assert [(r.prompt, r.responses[0].text, r.responses[1].text) for r in parsed] == texts
