"""Files that are not UTF-8 CSV/JSONL text are refused by name and reason, and nothing is saved."""

import gzip
import io
import zipfile
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils.html import escape

from datasets.models import Dataset, ImportJob, Item, Response, System

from .conftest import csv_text, wide_rows
from .test_views import upload

pytestmark = pytest.mark.django_db

CSV = csv_text(wide_rows(3))


def zip_bomb() -> bytes:
    """A small ZIP that would unpack to 50 MB of one repeated row."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("pairs.csv", CSV.encode() + b"1,p,a,r,b,r\n" * 4_500_000)
    return out.getvalue()


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
LATIN1 = "item_id,prompt,system,response\n1,Where is my parcel?,s,ok\n2,Caf\u00e9 order,s,r\n"

# (file name, content, the problem the message names)
HOSTILE = [
    ("pairs.csv", zip_bomb(), "this is a ZIP archive"),
    ("pairs.csv", gzip.compress(CSV.encode()), "this is a gzip-compressed file"),
    ("pairs.jsonl", gzip.compress(b'{"item_id": 1}\n' * 1000), "this is a gzip-compressed file"),
    ("pairs.csv", PNG, "this is a PNG image"),
    ("pairs.csv", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "this is a PDF document"),
    ("pairs.csv", CSV.encode()[:40] + b"\x00\x01\x02" + CSV.encode()[40:], "NUL byte at byte 40"),
    ("pairs.csv", CSV.encode("utf-16"), "this is UTF-16 text (save it as UTF-8)"),
    ("pairs.csv", CSV.encode("utf-16-le"), "UTF-16 text without a byte-order mark"),
    ("pairs.csv", CSV.encode("utf-32"), "this is UTF-32 text"),
    (
        "pairs.csv",
        LATIN1.encode("latin-1"),
        "pairs.csv:3: not UTF-8: byte 0xe9 at byte 63 of the file (byte 6 of the line)",
    ),
    (
        "pairs.csv",
        "item_id,prompt\n1,\u201cquoted\u201d\n".encode("cp1252"),
        "pairs.csv:2: not UTF-8: byte 0x93 at byte 17 of the file (byte 3 of the line)",
    ),
]
IDS = ["zip-bomb", "gzip-csv", "gzip-jsonl", "png", "pdf", "nul", "utf16", "utf16-no-bom", "utf32",
       "latin1", "cp1252"]  # fmt: skip


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def nothing_saved(media) -> bool:
    stored = list(media.rglob("*")) if media.exists() else []
    return not (
        stored
        or ImportJob.objects.exists()
        or Dataset.objects.exists()
        or Item.objects.exists()
        or Response.objects.exists()
        or System.objects.exists()
    )


@pytest.mark.parametrize(("name", "content", "problem"), HOSTILE, ids=IDS)
def test_upload_refuses_the_file_and_saves_nothing(client_for, lead, media, name, content, problem):
    response = upload(client_for(lead), content, name=name)

    assert response.status_code == 200
    page = response.content.decode()
    assert escape(f"{name}") in page
    assert escape(problem) in page
    assert nothing_saved(media)


@pytest.mark.parametrize(("name", "content", "problem"), HOSTILE, ids=IDS)
def test_command_refuses_the_file_and_imports_nothing(write, media, name, content, problem):
    path = write(name, content)
    err = StringIO()

    with pytest.raises(CommandError) as failure:
        call_command("import_pairs", str(path), "--dataset", "D", stderr=err)

    assert failure.value.returncode == 1
    message = err.getvalue()
    assert message.startswith(name)
    assert problem in message
    assert nothing_saved(media)


def test_the_zip_bomb_is_small_and_never_unpacked(client_for, lead, media):
    bomb = zip_bomb()
    assert len(bomb) < 200_000  # 50 MB inside

    response = upload(client_for(lead), bomb)

    assert "not a CSV or JSONL text file" in response.content.decode()
    assert nothing_saved(media)


def test_a_clean_upload_is_still_accepted(client_for, lead, media):
    response = upload(client_for(lead), CSV)

    assert response.status_code == 302
    assert response["Location"] == reverse("datasets:job", args=[ImportJob.objects.get().pk])
