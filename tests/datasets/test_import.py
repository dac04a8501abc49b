"""Importing pairs files into the database: all or nothing, idempotent, redacted, measured."""

from datetime import timedelta
from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from datasets import dataset_stats, tasks
from datasets.importing import errors as import_errors
from datasets.importing import jobs as import_jobs
from datasets.importing import services as importing
from datasets.importing import writers
from datasets.models import Dataset, ImportJob, Item, Response, System
from tests import factories

from .conftest import csv_text, jsonl_text, wide_rows

pytestmark = pytest.mark.django_db


def run_import(path, dataset="Support A/B", **kwargs):
    kwargs.setdefault("redact_pii", False)
    return importing.import_pairs(
        path=path, filename=path.name, dataset_name=dataset, enqueue_metrics=False, **kwargs
    )


def failed_import(path, dataset="Support A/B", **kwargs) -> list[str]:
    with pytest.raises(import_errors.ImportFailed) as failure:
        run_import(path, dataset, **kwargs)
    return failure.value.errors


def stored_state() -> list[tuple]:
    return sorted(
        Response.objects.values_list(
            "item__dataset__name", "item__external_id", "item__prompt", "system__name", "text"
        )
    )


def test_wide_csv_import_creates_dataset_items_and_responses(write, lead):
    path = write("pairs.csv", csv_text(wide_rows(30)))

    summary = run_import(path, user=lead)

    dataset = Dataset.objects.get()
    assert (dataset.name, dataset.slug, dataset.created_by) == ("Support A/B", "support-ab", lead)
    assert summary == {
        "dataset": "Support A/B",
        "slug": "support-ab",
        "form": "wide",
        "rows": 30,
        "items_created": 30,
        "responses_created": 60,
        "rows_unchanged": 0,
        "systems": ["gpt-4", "gpt-4o"],
        "redactions": None,
        "seconds": summary["seconds"],
    }
    item = Item.objects.get(external_id="T-0007")
    assert item.metadata == {"category": "shipping"}
    assert dict(item.responses.values_list("system__name", "metadata")) == {
        "gpt-4": {"latency_ms": 107},
        "gpt-4o": {"latency_ms": 87},
    }


def test_reimporting_the_same_file_changes_nothing(write):
    path = write("pairs.csv", csv_text(wide_rows(12)))
    run_import(path)
    before = stored_state()
    Response.objects.update(metrics={"words": 1})

    summary = run_import(path)

    assert (summary["items_created"], summary["responses_created"]) == (0, 0)
    assert summary["rows_unchanged"] == 12
    assert stored_state() == before
    assert list(Response.objects.values_list("metrics", flat=True)) == [{"words": 1}] * 24


def test_one_bad_row_means_nothing_is_imported(write):
    rows = wide_rows(50)
    rows[41]["response_b"] = ""
    path = write("pairs.csv", csv_text(rows))

    errors = failed_import(path)

    line = 2 + 41 * 4  # each row spans four lines
    assert errors == [f"pairs.csv:{line}: response_b: empty"]
    assert not Dataset.objects.exists()
    assert not Item.objects.exists()
    assert not System.objects.exists()


def test_prompt_differing_from_the_stored_item_is_an_error(write):
    run_import(write("first.csv", csv_text(wide_rows(3))))
    rows = wide_rows(3)
    rows[1]["prompt"] = "A different question"
    before = stored_state()

    errors = failed_import(write("second.csv", csv_text(rows)))

    assert errors == [
        "second.csv:6: prompt: differs from the stored item “T-0002” in dataset “Support A/B”"
    ]
    assert stored_state() == before


def test_a_stored_response_is_never_overwritten(write):
    run_import(write("first.csv", csv_text(wide_rows(2))))
    rows = wide_rows(3)
    rows[0]["response_a"] = "A better answer"

    errors = failed_import(write("second.csv", csv_text(rows)))

    assert errors == [
        "second.csv:2: response_a: differs from the stored response of “gpt-4” to item “T-0001”; "
        "an import never overwrites"
    ]
    assert Item.objects.count() == 2


def test_a_golden_dataset_run_through_a_new_system_adds_its_responses(write):
    run_import(write("first.csv", csv_text(wide_rows(4))))
    new_run = [
        {"item_id": f"T-{i:04d}", "prompt": f"My order #{i} has not arrived. What can I do?",
         "system": "gpt-4.1", "response": f"New answer {i}", "latency_ms": 50 + i}
        for i in range(1, 6)
    ]  # fmt: skip

    summary = run_import(write("run3.jsonl", jsonl_text(new_run)))

    assert summary["form"] == "long"
    assert (summary["items_created"], summary["responses_created"]) == (1, 5)
    assert Response.objects.filter(system__name="gpt-4.1").count() == 5
    assert Item.objects.count() == 5
    assert Response.objects.get(system__name="gpt-4.1", item__external_id="T-0003").metadata == {
        "latency_ms": 53
    }


def test_long_form_items_spread_over_batches_are_created_once(write, monkeypatch):
    monkeypatch.setattr(writers, "WRITE_BATCH", 3)
    rows = [
        {"item_id": f"Q{i % 4}", "prompt": f"Question {i % 4}", "system": f"s{i // 4}",
         "response": f"answer {i}"}
        for i in range(12)
    ]  # fmt: skip

    summary = run_import(write("long.csv", csv_text(rows)))

    assert (summary["items_created"], summary["responses_created"]) == (4, 12)
    assert Item.objects.count() == 4
    assert Response.objects.filter(item__external_id="Q2").count() == 3


def test_redaction_replaces_pii_everywhere_and_counts_it(write):
    rows = [
        {
            "item_id": "1",
            "prompt": "I am jane.doe@example.com, call me on +44 20 7946 0958",
            "context": "Card on file: 4111 1111 1111 1111",
            "reference": "Refund to DE89 3704 0044 0532 0130 00",
            "system_a": "gpt-4",
            "response_a": "I'll email jane.doe@example.com and call (555) 123-4567.",
            "system_b": "gpt-4o",
            "response_b": "Order 2024-01-15, version 1.2.3, ticket 12345678: nothing personal.",
        }
    ]

    summary = run_import(write("pii.csv", csv_text(rows)), redact_pii=True)

    assert summary["redactions"] == {"EMAIL": 2, "IBAN": 1, "CARD": 1, "PHONE": 2}
    item = Item.objects.get()
    assert item.prompt == "I am [EMAIL], call me on [PHONE]"
    assert item.context == "Card on file: [CARD]"
    assert item.reference == "Refund to [IBAN]"
    texts = dict(Response.objects.values_list("system__name", "text"))
    assert texts["gpt-4"] == "I'll email [EMAIL] and call [PHONE]."
    assert texts["gpt-4o"] == rows[0]["response_b"]


def test_redacted_reimport_is_a_noop(write):
    rows = wide_rows(2)
    rows[0]["prompt"] = "Write to me at a.b@example.org"
    path = write("pii.csv", csv_text(rows))
    run_import(path, redact_pii=True)

    summary = run_import(path, redact_pii=True)

    assert summary["rows_unchanged"] == 2
    assert summary["redactions"] == {"EMAIL": 0, "IBAN": 0, "CARD": 0, "PHONE": 0}


def test_a_job_killed_mid_import_leaves_the_dataset_unchanged(write, monkeypatch, lead):
    run_import(write("first.csv", csv_text(wide_rows(3))))
    before = stored_state()
    monkeypatch.setattr(writers, "WRITE_BATCH", 2)
    job = ImportJob.objects.create(dataset_name="Support A/B", filename="more.csv", created_by=lead)
    path = write("more.csv", csv_text(wide_rows(9)))
    calls = []

    def dies_on_third_batch(self, rows):
        calls.append(len(rows))
        if len(calls) == 3:
            raise SystemExit("worker killed")  # not an Exception: nothing catches it
        return original(self, rows)

    original = writers.BatchWriter._insert_responses
    monkeypatch.setattr(writers.BatchWriter, "_insert_responses", dies_on_third_batch)
    ImportJob.objects.filter(pk=job.pk).update(started_at=timezone.now())

    with pytest.raises(SystemExit):
        run_import(path, job=job)

    assert stored_state() == before
    job.refresh_from_db()
    assert job.status == ImportJob.Status.IMPORTING  # the process died; nobody recorded it
    ImportJob.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(hours=1))
    job.refresh_from_db()
    import_jobs.expire_stale_job(job=job)
    assert job.status == ImportJob.Status.FAILED
    assert "stopped before finishing" in job.errors[0]

    monkeypatch.setattr(writers.BatchWriter, "_insert_responses", original)
    summary = run_import(path, job=job)
    assert (summary["items_created"], summary["rows_unchanged"]) == (6, 3)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE


def test_an_unexpected_error_marks_the_job_failed(write, monkeypatch):
    job = ImportJob.objects.create(dataset_name="D", filename="f.csv")
    for writer in (writers.BatchWriter, writers.StreamingWriter):  # SQLite, PostgreSQL
        monkeypatch.setattr(writer, "flush", mock.Mock(side_effect=RuntimeError("boom")))

    with pytest.raises(RuntimeError):
        run_import(write("f.csv", csv_text(wide_rows(2))), "D", job=job)

    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert not Dataset.objects.exists()


def test_job_records_progress_errors_and_summary(write):
    job = ImportJob.objects.create(dataset_name="D", filename="bad.csv")
    rows = wide_rows(3)
    rows[2]["item_id"] = ""

    with pytest.raises(import_errors.ImportFailed):
        run_import(write("bad.csv", csv_text(rows)), "D", job=job)

    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert job.errors == ["bad.csv:10: item_id: empty"]
    assert len(job.sha256) == 64


def test_command_imports_and_reports(write):
    path = write("pairs.csv", csv_text(wide_rows(5)))
    out = StringIO()

    call_command("import_pairs", str(path), "--dataset", "Cmd", stdout=out)

    assert "Cmd: 5 rows (wide form), 5 new items, 10 new responses, 0 rows unchanged" in (
        out.getvalue()
    )


def test_command_prints_every_error_and_exits_1(write):
    rows = wide_rows(3)
    rows[0]["item_id"] = ""
    rows[2]["response_a"] = ""
    path = write("bad.csv", csv_text(rows))
    err = StringIO()

    with pytest.raises(CommandError) as failure:
        call_command("import_pairs", str(path), "--dataset", "Cmd", "--redact-pii", stderr=err)

    assert failure.value.returncode == 1
    assert err.getvalue().splitlines() == [
        "bad.csv:2: item_id: empty",
        "bad.csv:10: response_a: empty",
    ]
    assert not Dataset.objects.exists()


def test_metrics_are_computed_in_chunks_and_summarised_per_system(write):
    rows = wide_rows(7)
    rows[0]["response_a"] = "I'm sorry, but I can't help with that."
    run_import(write("pairs.csv", csv_text(rows)))
    dataset = Dataset.objects.get()

    assert dataset_stats.compute_metrics(dataset_id=dataset.pk, chunk_size=3) == 14
    assert dataset_stats.compute_metrics(dataset_id=dataset.pk, chunk_size=3) == 0

    refusal = Response.objects.get(item__external_id="T-0001", system__name="gpt-4")
    assert refusal.metrics["refusal"] is True
    assert refusal.metrics["words"] == 8
    dataset.refresh_from_db()
    stats = dataset.stats
    assert stats["metrics"]["refusal"]["gpt-4"]["mean"] == pytest.approx(1 / 7)
    assert stats["metrics"]["bullets"]["gpt-4o"] == {
        "n": 7, "mean": 2, "median": 2, "p90": 2, "p10": 2, "p25": 2, "p75": 2,
    }  # fmt: skip
    assert stats["metadata"]["latency_ms"]["gpt-4"]["median"] == 104
    assert stats["item_metadata"]["category"] == {
        "distinct": 2,
        "top": [["shipping", 4], ["billing", 3]],
    }


def test_metrics_task_is_enqueued_after_commit(write, django_capture_on_commit_callbacks):
    path = write("pairs.csv", csv_text(wide_rows(2)))
    with (
        mock.patch.object(tasks.compute_metrics, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        importing.import_pairs(path=path, filename="pairs.csv", dataset_name="D", redact_pii=False)

    send.assert_called_once_with(args=(Dataset.objects.get().pk,), kwargs={}, retry=False)


def test_import_task_runs_a_queued_job_once(
    write, lead, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    write("pairs.csv", csv_text(wide_rows(2)))
    job = ImportJob.objects.create(
        dataset_name="D", filename="pairs.csv", file="pairs.csv", created_by=lead
    )
    with mock.patch.object(tasks.run_import, "apply_async") as send:
        with django_capture_on_commit_callbacks(execute=True):
            assert import_jobs.confirm_import(job=job)
        assert not import_jobs.confirm_import(job=job)
    send.assert_called_once_with(args=(job.pk,), kwargs={}, retry=False)

    tasks.run_import(job.pk)
    tasks.run_import(job.pk)  # a second delivery does nothing

    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    assert job.summary["items_created"] == 2
    assert Item.objects.count() == 2


def test_dataset_slug_never_shadows_the_import_page(write):
    factories.DatasetFactory(name="Other", slug="import-2")

    run_import(write("f.csv", csv_text(wide_rows(1))), "Import")

    assert Dataset.objects.get(name="Import").slug == "import-3"


def test_a_missing_file_is_reported_not_crashed_on(tmp_path):
    errors = failed_import(tmp_path / "gone.csv")

    assert errors == ["gone.csv: cannot read the file (No such file or directory)"]


def test_a_column_numeric_at_first_then_not_is_stored_as_text_throughout(write):
    rows = wide_rows(6)
    rows[4]["latency_ms_b"] = "n/a"  # the one-pass import typed rows 1-4 already: it starts over

    summary = run_import(write("pairs.csv", csv_text(rows)))

    assert summary["items_created"] == 6
    stored = Response.objects.filter(system__name="gpt-4o").order_by("item__external_id")
    assert [r.metadata["latency_ms"] for r in stored] == ["81", "82", "83", "84", "n/a", "86"]
    assert Response.objects.filter(system__name="gpt-4").first().metadata["latency_ms"] > 100


def test_ids_and_new_systems_mid_file_are_taken_as_the_rows_arrive(write, monkeypatch):
    monkeypatch.setattr(writers, "FIRST_ID_BLOCK", 2)  # several id blocks (PostgreSQL)
    rows = [
        {"item_id": f"Q{i % 5}", "prompt": f"Question {i % 5}", "system": f"s{i // 5}",
         "response": f"answer {i}", "item.topic": "t"}
        for i in range(20)
    ]  # fmt: skip

    summary = run_import(write("long.csv", csv_text(rows)))

    assert (summary["items_created"], summary["responses_created"]) == (5, 20)
    assert summary["systems"] == ["s0", "s1", "s2", "s3"]
    assert Item.objects.count() == 5
    assert Response.objects.filter(item__external_id="Q3").count() == 4
    assert Response.objects.get(item__external_id="Q3", system__name="s2").text == "answer 13"


def test_an_error_late_in_the_file_leaves_no_rows_and_no_systems(write):
    rows = [{**row, "auto_preference": "tie"} for row in wide_rows(40)]
    rows[-1]["system_b"] = "gpt-5"
    rows[-1]["auto_preference"] = "gemini"

    errors = failed_import(write("pairs.csv", csv_text(rows)))

    assert errors == [
        "pairs.csv:158: auto_preference: “gemini” is neither system_a, system_b, tie nor both_bad"
    ]
    assert not Dataset.objects.exists()
    assert not System.objects.exists()
    assert not Item.objects.exists()


def test_an_unchanged_file_is_recognised_by_its_hash_without_reading_a_row(write):
    path = write("pairs.csv", csv_text(wide_rows(12)))
    first = run_import(path)
    from datasets.importing.parsing import PairsFile

    with mock.patch.object(PairsFile, "rows", side_effect=AssertionError("rows were read")):
        again = run_import(path)
    assert again["rows_unchanged"] == again["rows"] == 12
    assert (again["items_created"], again["responses_created"]) == (0, 0)
    assert (again["form"], again["systems"]) == (first["form"], first["systems"])

    # Another setting or another byte: the rows are read and checked again.
    with mock.patch.object(PairsFile, "rows", side_effect=AssertionError("rows were read")):
        with pytest.raises(AssertionError, match="rows were read"):
            run_import(path, redact_pii=True)
        changed = write("pairs.csv", csv_text(wide_rows(12)) + "\n")
        with pytest.raises(AssertionError, match="rows were read"):
            run_import(changed)


def test_a_file_that_failed_is_not_remembered(write):
    rows = wide_rows(5)
    rows[3]["response_b"] = ""
    path = write("pairs.csv", csv_text(rows))
    failed_import(path)
    run_import(write("ok.csv", csv_text(wide_rows(5))))  # the dataset now exists
    assert failed_import(path)  # still checked, still refused
