"""What a pairs file may hold is bounded (IMPORT_MAX_* settings): a file past a bound is refused
with FILE:LINE messages, through the upload page and the command alike, before anything is saved;
and the pages of a dataset imported before the bounds stay fast."""

import csv
import io
import json
import time
import tracemalloc
from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from datasets import dataset_stats
from datasets.importing.forms import UploadForm
from datasets.models import ImportJob, Item
from tests import factories

from .conftest import WIDE_HEADER, csv_text, jsonl_text, wide_rows
from .test_hostile_uploads import nothing_saved
from .test_views import upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def million_columns() -> bytes:
    """About 10 MB: a header of 1,000,000 columns (the required six first), and one row."""
    names = [*WIDE_HEADER] + [f"c{i:07d}" for i in range(1_000_000 - len(WIDE_HEADER))]
    header = ",".join(names).encode()
    row = b"T-1,Where is my order?,a,Soon.,b,Today." + b"," * (len(names) - 6)
    return header + b"\n" + row + b"\n"


def command(path) -> str:
    """Run import_pairs on ``path``; its stderr (the command must fail with status 1)."""
    err = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("import_pairs", str(path), "--dataset", "D", stderr=err)
    assert failure.value.returncode == 1
    return err.getvalue()


def test_a_million_columns_are_refused_by_the_upload_page_fast_and_small(client_for, lead, media):
    content = million_columns()
    assert len(content) > 9_000_000
    measured = {}
    checks = UploadForm.clean_file

    def measured_checks(form):
        """The server's checks of the received upload, measured (the test client's own
        copies of the 10 MB request are not the server's)."""
        tracemalloc.start()
        started = time.perf_counter()
        try:
            return checks(form)
        finally:
            measured["seconds"] = time.perf_counter() - started
            measured["peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()

    with mock.patch.object(UploadForm, "clean_file", measured_checks):
        response = upload(client_for(lead), content)

    page = response.content.decode()
    assert response.status_code == 200
    assert "pairs.csv:1: the header has more than 200 columns" in page
    assert nothing_saved(media)
    # The header line is read once (9 MB, and its text); splitting it into a million names and
    # classifying them took ~930 MB.
    assert measured["peak"] < 40 * 1024 * 1024, f"peak {measured['peak'] / 1e6:.0f} MB"
    assert measured["seconds"] < 2


def test_a_million_columns_are_refused_by_the_command(write, media):
    path = write("pairs.csv", million_columns())

    tracemalloc.start()
    message = command(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert message.startswith("pairs.csv:1: the header has more than 200 columns")
    assert peak < 40 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"
    assert nothing_saved(media)


def test_quoted_commas_in_a_header_are_not_columns(write, settings):
    settings.IMPORT_MAX_COLUMNS = 8
    header = [*WIDE_HEADER, '"note, free text"', '"a ""quoted"", name"']
    rows = "T-1,p,a,r,b,s,x,y\n"
    path = write("pairs.csv", ",".join(header) + "\n" + rows)

    call_command("import_pairs", str(path), "--dataset", "D", stdout=StringIO())

    assert Item.objects.get().metadata == {
        "note, free text": "x",
        'a "quoted", name': "y",
    }


def test_the_column_limit_is_a_setting(client_for, lead, media, settings, write):
    settings.IMPORT_MAX_COLUMNS = 8
    rows = [{**row, "extra_1": "x", "extra_2": "y", "extra_3": "z"} for row in wide_rows(2)]
    content = csv_text(rows)  # 9 + 3 = 12 columns

    page = upload(client_for(lead), content).content.decode()
    assert "pairs.csv:1: the header has more than 8 columns" in page
    assert "IMPORT_MAX_COLUMNS" in page
    assert "pairs.csv:1: the header has more than 8 columns" in command(write("pairs.csv", content))
    assert nothing_saved(media)


def test_a_jsonl_object_with_too_many_keys_is_refused(client_for, lead, media, write):
    good = {k: v for k, v in wide_rows(1)[0].items() if k in WIDE_HEADER}
    wide = {**good, "item_id": "T-2", **{f"k{i}": i for i in range(300)}}
    content = jsonl_text([good, wide])

    message = command(write("pairs.jsonl", content))
    assert "pairs.jsonl:2: 306 keys, more than the limit of 200" in message
    # The first line is the header the upload page checks.
    first = jsonl_text([wide, good])
    assert "pairs.jsonl:1: the header has more than 200 keys" in (
        upload(client_for(lead), first, name="pairs.jsonl").content.decode()
    )
    assert nothing_saved(media)


def test_a_million_keys_in_a_jsonl_object_are_refused_without_parsing_it(write, media):
    good = {k: v for k, v in wide_rows(1)[0].items() if k in WIDE_HEADER}
    crafted = json.dumps({**good, **{f"{i:x}": 0 for i in range(1_000_000)}})  # ~12 MB
    content = jsonl_text([good]) + crafted + "\n"
    path = write("pairs.jsonl", content)

    tracemalloc.start()
    message = command(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert message.startswith("pairs.jsonl:2: more than 200 keys, the limit")
    assert peak < 60 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"  # parsing it took ~300 MB
    first = write("first.jsonl", crafted + "\n" + jsonl_text([good]))
    assert command(first).startswith("first.jsonl:1: the header has more than 200 keys")
    assert nothing_saved(media)


def test_metadata_keys_are_bounded_per_item_and_per_response(write, media, settings):
    settings.IMPORT_MAX_METADATA_KEYS = 3
    rows = [{**row, "m1": 1, "m2": 2, "m3": 3, "m4": 4} for row in wide_rows(1)]
    message = command(write("pairs.csv", csv_text(rows)))
    # category + m1..m4 for the item; latency_ms per response is within the limit.
    assert "pairs.csv:1: 5 metadata columns for the item, more than the limit of 3" in message
    assert "for the response" not in message
    # Each response counts its own: three for A and three for B are within a limit of three.
    sides = [{**row, "x_a": 1, "y_a": 2, "x_b": 3, "y_b": 4} for row in wide_rows(2)]
    for row in sides:
        del row["category"]
    call_command("import_pairs", str(write("sides.csv", csv_text(sides))), "--dataset", "S",
                 stdout=StringIO())  # fmt: skip
    assert Item.objects.filter(dataset__name="S").count() == 2
    sides = [{**row, "z_b": 5} for row in sides]
    message = command(write("sides.csv", csv_text(sides)))
    assert "sides.csv:1: 4 metadata columns for the response B, more than the limit of 3" in message

    base = {k: v for k, v in wide_rows(1)[0].items() if k in WIDE_HEADER}
    objects = [
        {**base, "metadata_a": {"k1": 1, "k2": 2}},
        {**base, "item_id": "T-9", "metadata_a": {f"k{i}": i for i in range(4)}},
        {**base, "item_id": "T-8", "metadata": {"x" * 201: 1}},
        {**base, "item_id": "T-7", "metadata": {"deep": [1] * 2000}},
    ]
    settings.IMPORT_MAX_CELL_BYTES = 1000
    message = command(write("pairs.jsonl", jsonl_text(objects)))
    assert "pairs.jsonl:2: metadata_a: 4 metadata keys, more than the limit of 3" in message
    assert "pairs.jsonl:3: metadata: a metadata key is longer than 200 characters" in message
    assert "pairs.jsonl:4: metadata: metadata “deep” is over 1000 bytes" in message
    assert "pairs.jsonl:1:" not in message
    long_name = [{**row, "n" * 201: "x"} for row in wide_rows(1)]
    message = command(write("long.csv", csv_text(long_name)))
    assert "long.csv:1: column 10: a metadata key is longer than 200 characters" in message
    top_level = [{**base, "k" * 201: "x"}]
    message = command(write("long.jsonl", jsonl_text(top_level)))
    assert "long.jsonl:1: key 7: a metadata key is longer than 200 characters" in message


def test_cell_and_line_sizes_are_settings(write, media, settings):
    settings.IMPORT_MAX_CELL_BYTES = 2000
    rows = [{**row, "response_b": "One line."} for row in wide_rows(3)]
    rows[1]["response_b"] = "é" * 1500  # 3,000 bytes
    message = command(write("pairs.csv", csv_text(rows)))
    assert "pairs.csv:3: response_b: field over 1.95 KB" in message

    settings.IMPORT_MAX_CELL_BYTES = 1024 * 1024
    settings.IMPORT_MAX_LINE_BYTES = 4096
    rows[1]["response_b"] = "x" * 5000
    message = command(write("pairs.csv", csv_text(rows)))
    assert message.startswith("pairs.csv:3: line longer than 4 KB")
    assert nothing_saved(media)


@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolon"), ("\t", "tab")])
def test_semicolon_and_tab_separated_files_are_read(
    client_for, lead, media, delimiter, name, django_capture_on_commit_callbacks, tasks_run_at_once
):
    rows = wide_rows(3)
    rows[0]["prompt"] = "Hello, world; and\tmore"  # delimiters inside a quoted field
    text = _joined(rows, delimiter)
    client = client_for(lead)

    response = upload(client, text, name=f"{name}.csv")
    assert response.status_code == 302
    job = ImportJob.objects.get()
    preview = client.get(response["Location"]).content.decode()
    assert "Detected <strong>wide form</strong>" in preview
    assert "missing required column" not in preview

    with django_capture_on_commit_callbacks(execute=True):
        confirmed = client.post(reverse("datasets:job", args=[job.pk]), {"action": "confirm"})
    assert confirmed.status_code == 302, confirmed.content.decode()[:3000]
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE, job.errors
    assert job.summary["items_created"] == 3
    item = job.dataset.items.order_by("external_id").first()
    assert item.prompt == "Hello, world; and\tmore"
    assert item.metadata == {"category": "shipping"}


def _joined(rows: list[dict], delimiter: str) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), delimiter=delimiter)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_pages_of_a_dataset_imported_before_the_bounds_stay_small(
    client_for, lead, django_assert_max_num_queries
):
    """A dataset holding what a million-column file made: 5,000 metadata keys per item and
    response, summarised. Its pages answer, show a bounded part, and the summary is bounded."""
    dataset = factories.DatasetFactory(name="Wide", slug="wide")
    systems = [factories.SystemFactory(name=n) for n in ("a", "b")]
    huge = {f"c{i}": "v" * 50 for i in range(5000)}
    for n in range(25):
        item = factories.ItemFactory(dataset=dataset, external_id=f"T-{n}", metadata=huge)
        for system in systems:
            factories.ResponseFactory(item=item, system=system, metadata={**huge, "ms": n})
    dataset_stats.compute_metrics(dataset_id=dataset.pk)
    dataset.refresh_from_db()
    assert len(dataset.stats["item_metadata"]) == 100
    assert dataset.n_items == 25
    assert len(json.dumps(dataset.stats)) < 200_000
    client = client_for(lead)

    with django_assert_max_num_queries(12):
        detail = client.get(reverse("datasets:detail", args=["wide"]))
    assert detail.status_code == 200
    assert len(detail.content) < 300_000
    with django_assert_max_num_queries(12):
        items = client.get(reverse("datasets:items", args=["wide"]))
    assert items.status_code == 200
    assert "and 4,980 more keys" in items.content.decode()
    assert len(items.content) < 300_000


def workbook(rows: list[list], *, extra: dict | None = None) -> bytes:
    """An .xlsx whose first sheet holds ``rows``; ``extra`` puts values at cells ("KN2": 1)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    for ref, value in (extra or {}).items():
        sheet[ref] = value
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def sheet_rows(n: int) -> list[list]:
    header = [*WIDE_HEADER, "category", "latency_ms_a", "latency_ms_b"]
    rows = [[row[name] for name in header] for row in wide_rows(n)]
    for row in rows:
        row[-2:] = [int(row[-2]), float(row[-1]) + 0.5]  # numbers, as Excel stores them
    return [header, *rows]


def test_an_excel_workbook_is_previewed_and_imported(
    client_for, lead, media, django_capture_on_commit_callbacks, tasks_run_at_once
):
    client = client_for(lead)
    response = upload(client, workbook(sheet_rows(4)), name="pairs.xlsx")
    assert response.status_code == 302, response.content.decode()[:2000]
    job = ImportJob.objects.get()

    page = client.get(response["Location"]).content.decode()
    assert "Detected <strong>wide form</strong> (XLSX)" in page
    assert "T-0004" in page
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("datasets:job", args=[job.pk]), {"action": "confirm"})

    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE, job.errors
    assert job.summary["items_created"] == 4
    item = Item.objects.get(external_id="T-0002")
    assert item.metadata == {"category": "billing"}
    latencies = dict(item.responses.values_list("system__name", "metadata"))
    assert latencies == {"gpt-4": {"latency_ms": 102}, "gpt-4o": {"latency_ms": 82.5}}
    assert "\n\n- Check the tracking page" in item.responses.get(system__name="gpt-4o").text


def test_workbook_errors_name_the_sheet_row(write, media):
    rows = sheet_rows(4)
    rows[3][5] = None  # response_b of T-0003, sheet row 4
    message = command(write("pairs.xlsx", workbook(rows)))
    assert message.strip() == "pairs.xlsx:4: response_b: empty"
    assert nothing_saved(media)


def test_a_workbook_past_the_column_limit_is_refused_before_openpyxl_reads_it(
    client_for, lead, media, write
):
    content = workbook(sheet_rows(2), extra={"KN3": "x"})  # column 300 of sheet row 3
    expected = "pairs.xlsx:3: the row reaches column 300, past the limit of 200 columns"

    with mock.patch("openpyxl.load_workbook") as opened:
        page = upload(client_for(lead), content, name="pairs.xlsx").content.decode()
        assert expected in command(write("pairs.xlsx", content))
    assert expected in page
    opened.assert_not_called()
    assert nothing_saved(media)


def test_a_workbook_that_unpacks_past_the_upload_limit_is_refused(
    client_for, lead, media, settings
):
    content = workbook(sheet_rows(200))
    settings.IMPORT_MAX_UPLOAD_BYTES = len(content) + 1000  # the file fits, its parts do not

    page = upload(client_for(lead), content, name="pairs.xlsx").content.decode()

    assert "pairs.xlsx: the workbook unpacks to more than" in page
    assert nothing_saved(media)
