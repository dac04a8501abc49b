"""The lead's dataset pages: upload → preview → confirm → progress → summary, and browsing."""

import re
from html.parser import HTMLParser
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from datasets import dataset_stats, tasks
from datasets.importing import jobs as import_jobs
from datasets.models import Dataset, ImportJob
from tests import factories

from .conftest import csv_text, wide_rows

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def dataset():
    dataset = factories.DatasetFactory(name="Support", slug="support")
    systems = [factories.SystemFactory(name=name) for name in ("gpt-4", "gpt-4o", "claude")]
    for n in range(30):
        item = factories.ItemFactory(dataset=dataset, external_id=f"T-{n:03d}")
        for system in systems:
            factories.ResponseFactory(item=item, system=system, metadata={"latency_ms": n})
    return dataset


class Tags(HTMLParser):
    """The scripts, link targets and inline event handlers of a page, as a browser sees them."""

    def __init__(self):
        super().__init__()
        self.scripts, self.links, self.handlers = [], [], []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes.get("src"))
        if tag == "a" and "href" in attributes:
            self.links.append(attributes["href"] or "")
        self.handlers += [name for name in attributes if name.startswith("on")]


def upload(client, content: str | bytes, name="pairs.csv", dataset="Support", **extra):
    data = content.encode() if isinstance(content, str) else content
    return client.post(
        reverse("datasets:upload"),
        {"file": SimpleUploadedFile(name, data), "dataset": dataset, **extra},
    )


@pytest.mark.parametrize(
    ("persona", "expected"),
    [(None, 302), ("reviewer", 403), ("analyst", 403), ("outsider", 403), ("lead", 200)],
)
def test_every_dataset_page_is_for_leads_only(request, client, client_for, persona, expected):
    dataset = factories.DatasetFactory(slug="d")
    job = ImportJob.objects.create(dataset_name="d", filename="f.csv", status="done")
    if persona:
        client = client_for(request.getfixturevalue(persona))
    urls = [
        reverse("datasets:list"),
        reverse("datasets:upload"),
        reverse("datasets:job", args=[job.pk]),
        reverse("datasets:job-status", args=[job.pk]),
        reverse("datasets:detail", args=[dataset.slug]),
        reverse("datasets:items", args=[dataset.slug]),
    ]
    statuses = {url: client.get(url).status_code for url in urls}
    if expected == 200:
        expected_status = dict.fromkeys(urls, 200)
        expected_status[urls[3]] = 286  # a finished job's status fragment stops the polling
        assert statuses == expected_status
    else:
        assert set(statuses.values()) == {expected}


def test_unknown_dataset_and_job_are_404(client_for, lead):
    client = client_for(lead)
    assert client.get(reverse("datasets:detail", args=["nope"])).status_code == 404
    assert client.get(reverse("datasets:job", args=[999])).status_code == 404


def test_upload_preview_confirm_progress_summary(client_for, lead, media):
    client = client_for(lead)

    response = upload(client, csv_text(wide_rows(8)), redact_pii="on")
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("datasets:job", args=[job.pk])
    assert (job.dataset_name, job.redact_pii, job.status) == ("Support", True, "pending")

    page = client.get(response["Location"]).content.decode()
    assert "Detected <strong>wide form</strong> (CSV)" in page
    assert "response A metadata “latency_ms”" in page
    assert "T-0005" in page
    assert "T-0006" not in page  # five rows of preview
    assert 'value="confirm"' in page
    assert not Dataset.objects.exists()

    with mock.patch.object(tasks.run_import, "apply_async") as send:
        confirm = client.post(
            reverse("datasets:job", args=[job.pk]), {"action": "confirm"}, headers=HX
        )
    fragment = confirm.content.decode()
    assert "<html" not in fragment
    assert "Waiting for a worker" in fragment
    assert 'hx-trigger="every 1s"' in fragment
    send.assert_not_called()  # sent only once the request's transaction commits

    status_url = reverse("datasets:job-status", args=[job.pk])
    ImportJob.objects.filter(pk=job.pk).update(status="importing", rows_done=4, rows_total=8)
    polling = client.get(status_url, headers=HX)
    assert polling.status_code == 200
    assert '<progress max="100" value="50"' in polling.content.decode()

    ImportJob.objects.filter(pk=job.pk).update(status="pending", rows_done=0)
    tasks.run_import(job.pk)  # what the worker does

    done = client.get(status_url, headers=HX)
    assert done.status_code == 286  # htmx stops polling
    summary = done.content.decode()
    assert "<html" not in summary
    assert "8 new items, 16 new responses" in summary
    assert "0 [EMAIL]" in summary
    assert reverse("datasets:detail", args=["support"]) in summary


def test_confirming_sends_the_task_after_commit(
    client_for, lead, media, django_capture_on_commit_callbacks
):
    client = client_for(lead)
    upload(client, csv_text(wide_rows(2)))
    job = ImportJob.objects.get()

    with (
        mock.patch.object(tasks.run_import, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(reverse("datasets:job", args=[job.pk]), {"action": "confirm"})
        client.post(reverse("datasets:job", args=[job.pk]), {"action": "confirm"})

    assert response.status_code == 302
    send.assert_called_once_with(args=(job.pk,), kwargs={}, retry=False)


def test_failed_import_lists_errors_with_line_and_column(client_for, lead, media):
    client = client_for(lead)
    rows = wide_rows(8)
    rows[6]["response_b"] = ""
    upload(client, csv_text(rows))
    job = ImportJob.objects.get()
    import_jobs.confirm_import(job=job)

    tasks.run_import(job.pk)

    fragment = client.get(reverse("datasets:job-status", args=[job.pk]), headers=HX)
    assert fragment.status_code == 286
    assert "pairs.csv:26: response_b: empty" in fragment.content.decode()
    assert "Nothing was imported" in fragment.content.decode()
    assert not Dataset.objects.exists()


def test_preview_of_a_file_with_missing_columns_offers_no_import(client_for, lead, media):
    client = client_for(lead)
    upload(client, "item_id,question,system,response\n1,q,s,r\n")

    page = client.get(reverse("datasets:job", args=[ImportJob.objects.get().pk])).content.decode()

    assert "pairs.csv:1: prompt: missing required column" in page
    assert 'value="confirm"' not in page


def test_a_failed_preview_is_listed_as_failed_not_waiting(client_for, lead, media):
    client = client_for(lead)
    upload(client, "item_id,question,system,response\n1,q,s,r\n")
    job = ImportJob.objects.get()
    upload(client, csv_text(wide_rows(2)))  # a good file, not confirmed yet

    client.get(reverse("datasets:job", args=[job.pk]))

    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert job.errors[0].startswith("pairs.csv:1: prompt: missing required column")
    listed = client.get(reverse("datasets:list")).content.decode()
    assert "Waiting to start" not in listed
    assert "<td>Failed</td>" in listed
    assert "<td>Awaiting confirmation</td>" in listed
    again = client.get(reverse("datasets:job", args=[job.pk])).content.decode()
    assert "Nothing was imported" in again
    assert "pairs.csv:1: prompt: missing required column" in again


def test_upload_form_refuses_other_file_types(client_for, lead, media):
    response = upload(client_for(lead), "x", name="pairs.xls")

    assert response.status_code == 200
    assert "Upload a .csv, .jsonl or .xlsx file." in response.content.decode()
    assert not ImportJob.objects.exists()


def test_a_text_file_named_xlsx_is_refused_as_not_a_workbook(client_for, lead, media):
    response = upload(client_for(lead), "x", name="pairs.xlsx")

    assert response.status_code == 200
    assert "not a readable .xlsx workbook" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_stale_running_job_shows_as_failed_and_can_run_again(client_for, lead, media):
    client = client_for(lead)
    upload(client, csv_text(wide_rows(3)))
    job = ImportJob.objects.get()
    ImportJob.objects.filter(pk=job.pk).update(
        status="importing", queued_at="2020-01-01T00:00Z", started_at="2020-01-01T00:00Z"
    )

    fragment = client.get(reverse("datasets:job-status", args=[job.pk]), headers=HX)
    assert fragment.status_code == 286
    assert "stopped before finishing" in fragment.content.decode()
    assert 'value="retry"' in fragment.content.decode()

    with mock.patch.object(tasks.run_import, "apply_async"):
        client.post(reverse("datasets:job", args=[job.pk]), {"action": "retry"}, headers=HX)
    tasks.run_import(job.pk)
    job.refresh_from_db()
    assert (job.status, job.summary["items_created"]) == ("done", 3)


def test_dataset_page_shows_systems_metadata_and_metrics_side_by_side(
    client_for, lead, dataset, django_assert_max_num_queries
):
    dataset_stats.compute_metrics(dataset_id=dataset.pk)
    client = client_for(lead)

    with django_assert_max_num_queries(7):
        page = client.get(reverse("datasets:detail", args=["support"])).content.decode()

    assert "30 items, 90 responses from 3 systems" in page
    for name in ("gpt-4", "gpt-4o", "claude"):
        assert f'<th scope="colgroup" colspan="3">{name}</th>' in page
    assert "Uses Markdown" in page
    assert "latency_ms" in page
    assert "shipping (30)" in page
    assert 'hx-trigger="every 5s"' not in page  # all metrics are in


def test_metrics_fragment_polls_until_every_response_has_metrics(client_for, lead, dataset):
    client = client_for(lead)
    url = reverse("datasets:detail", args=["support"])
    headers = {**HX, "HX-Target": "metrics"}

    pending = client.get(url, headers=headers)
    assert pending.status_code == 200
    assert "<html" not in pending.content.decode()
    assert "0 of 90 responses so far" in pending.content.decode()

    dataset_stats.compute_metrics(dataset_id=dataset.pk)
    assert client.get(url, headers=headers).status_code == 286


def test_item_browser_sanitizes_responses(client_for, lead):
    dataset = factories.DatasetFactory(slug="evil")
    item = factories.ItemFactory(dataset=dataset, prompt="<b>prompt</b>")
    factories.ResponseFactory(
        item=item,
        system=factories.SystemFactory(name="a"),
        text="<script>alert(1)</script> [click](javascript:alert(2)) "
        '<a href="javascript:alert(3)">x</a> [ok](https://example.com) **bold**',
    )
    factories.ResponseFactory(
        item=item, system=factories.SystemFactory(name="b"), text="<img src=x onerror=alert(4)>"
    )

    page = client_for(lead).get(reverse("datasets:items", args=["evil"])).content.decode()

    tags = Tags()
    tags.feed(page)
    assert not [src for src in tags.scripts if not src or "/static/" not in src]
    assert not [href for href in tags.links if not href.startswith(("/", "#", "https://"))]
    assert not tags.handlers
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">ok</a>' in page
    assert "<strong>bold</strong>" in page
    assert "&lt;b&gt;prompt&lt;/b&gt;" in page


def test_item_browser_pages_and_chooses_systems(
    client_for, lead, dataset, django_assert_max_num_queries
):
    client = client_for(lead)
    url = reverse("datasets:items", args=["support"])

    with django_assert_max_num_queries(8):
        first = client.get(url).content.decode()
    assert first.count("<article") == 20
    assert "<h3>claude</h3>" in first
    assert "<h3>gpt-4</h3>" in first
    assert "<h3>gpt-4o</h3>" not in first

    with django_assert_max_num_queries(8):
        second = client.get(url, {"page": 2, "a": "gpt-4o", "b": "gpt-4"}, headers=HX)
    fragment = second.content.decode()
    assert "<html" not in fragment
    assert fragment.count("<article") == 10
    assert "<h3>gpt-4o</h3>" in fragment
    assert "T-029" in fragment


def test_dataset_list_links_each_dataset(client_for, lead, dataset, django_assert_max_num_queries):
    factories.DatasetFactory(name="Other", slug="other")

    client = client_for(lead)

    with django_assert_max_num_queries(5):
        page = client.get(reverse("datasets:list")).content.decode()

    assert reverse("datasets:detail", args=["support"]) in page
    assert reverse("datasets:detail", args=["other"]) in page


def test_item_browser_searches_ids_and_prompts(client_for, lead, dataset):
    client = client_for(lead)
    url = reverse("datasets:items", args=["support"])
    by_id = client.get(url, {"q": "t-007"}, headers=HX).content.decode()
    assert by_id.count("<article") == 1
    assert "T-007" in by_id
    assert "matching “t-007”" in by_id
    nothing = client.get(url, {"q": "no such words anywhere"}).content.decode()
    assert "No item matches “no such words anywhere”." in nothing
    everything = client.get(url).content.decode()
    assert 'type="search"' in everything


def test_dataset_page_formats_each_measure_evenly_and_draws_distributions(
    client_for, lead, dataset
):
    dataset_stats.compute_metrics(dataset_id=dataset.pk)
    page = client_for(lead).get(reverse("datasets:detail", args=["support"])).content.decode()
    rows = {
        m.group(1): re.findall(r'<td class="num">([^<]*)</td>', m.group(2))
        for m in re.finditer(r'<tr><th scope="row">([^<]+)</th>(.*?)</tr>', page)
    }
    # A share is a percentage in each system's mean column, not under p90.
    markdown = rows["Uses Markdown"]
    assert markdown[0].endswith("%")
    assert markdown[1:3] == ["", ""]
    # One precision per measure: every figure in a row has the same number of decimals.
    for label, cells in rows.items():
        places = {len(c.split(".")[1]) if "." in c else 0 for c in cells if c and c[-1] != "%"}
        assert len(places) <= 1, (label, cells)
    assert "Distributions per system" in page
    assert 'aria-label="Length (characters):' in page
    assert 'aria-label="Latency (latency_ms):' in page
    assert "style=" not in page


def test_dataset_list_shows_stored_counts_without_reading_items(
    client_for, lead, media, django_capture_on_commit_callbacks, tasks_run_at_once
):
    """Counting items per dataset on each visit took 20 s beside a 535,000-item dataset: the
    list reads the count stored by the import, and never the items table."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(lead)
    upload(client, csv_text(wide_rows(7)))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("datasets:job", args=[ImportJob.objects.get().pk]), {"action": "confirm"}
        )
    for n in range(12):
        factories.DatasetFactory(name=f"D{n}", slug=f"d{n}")

    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("datasets:list")).content.decode()

    assert len(queries) <= 4  # session, user and roles, datasets, recent imports
    assert not [q["sql"] for q in queries if "datasets_item" in q["sql"]]
    assert '<td class="num">7</td>' in page


def test_a_dataset_s_pages_read_stored_counts_not_every_response(
    client_for, lead, media, django_capture_on_commit_callbacks, tasks_run_at_once
):
    """On a 500,000-item dataset the per-system GROUP BY took 0.7 s and the item count 0.25 s
    a page (benchmarks/dataset_list.py): the import stores them, the pages read them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(lead)
    upload(client, csv_text(wide_rows(23)))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("datasets:job", args=[ImportJob.objects.get().pk]), {"action": "confirm"}
        )
    dataset = Dataset.objects.get()
    assert dataset.n_items == 23
    assert dataset.stats["systems"] == {
        "gpt-4": {"responses": 23, "with_metrics": 23},
        "gpt-4o": {"responses": 23, "with_metrics": 23},
    }

    for name in ("datasets:detail", "datasets:items"):
        with CaptureQueriesContext(connection) as queries:
            page = client.get(reverse(name, args=[dataset.slug])).content.decode()
        scans = [q["sql"] for q in queries if "GROUP BY" in q["sql"] or "COUNT(" in q["sql"]]
        assert not scans, name
    assert (
        "23 items, 46 responses from 2 systems"
        in client.get(reverse("datasets:detail", args=[dataset.slug])).content.decode()
    )
    assert "Items 1–20 of 23" in page
