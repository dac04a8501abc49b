"""Gold (known-answer) columns in pairs files: wide and long form, stored on the item."""

import pytest

from datasets.importing import writers
from datasets.models import Item

from .conftest import csv_text, jsonl_text, wide_rows
from .test_import import failed_import, run_import

pytestmark = pytest.mark.django_db


def long_rows(n: int) -> list[dict]:
    return [
        {"item_id": f"T-{i}", "prompt": f"Question {i}?", "system": system,
         "response": f"{system} answers {i}.", "gold": "", "gold_note": ""}
        for i in range(1, n + 1)
        for system in ("gpt-4", "gpt-4o")
    ]  # fmt: skip


def test_wide_gold_and_note_are_stored_on_the_item(write):
    rows = wide_rows(3)
    for row in rows:
        row["gold"], row["gold_note"] = "", ""
    rows[0]["gold"], rows[0]["gold_note"] = "gpt-4o", "A gives a wrong refund window."
    rows[1]["gold"] = "tie"
    run_import(write("pairs.csv", csv_text(rows)))

    stored = dict(Item.objects.values_list("external_id", "gold"))
    assert stored == {"T-0001": "gpt-4o", "T-0002": "tie", "T-0003": ""}
    first = Item.objects.get(external_id="T-0001")
    assert first.gold_note == "A gives a wrong refund window."
    assert first.is_gold
    assert not Item.objects.get(external_id="T-0003").is_gold
    assert set(first.metadata) == {"category"}


def test_wide_gold_naming_no_side_of_the_row_is_a_file_line_error(write):
    rows = wide_rows(2)
    for row in rows:
        row["gold"] = ""
    rows[1]["gold"] = "claude"
    errors = failed_import(write("pairs.csv", csv_text(rows)))

    # Each wide row spans four lines (response_b has line breaks): the second starts on line 6.
    assert errors == [
        "pairs.csv:6: gold: “claude” is neither system_a, system_b, baseline, candidate, tie "
        "nor both_bad"
    ]
    assert not Item.objects.exists()


def test_long_form_gold_may_be_on_any_row_of_the_item(write, monkeypatch):
    rows = long_rows(3)
    rows[1]["gold"], rows[1]["gold_note"] = "candidate", "Only B cites the policy."  # 2nd row
    rows[4]["gold"] = "both_bad"  # first row of T-3
    monkeypatch.setattr(writers, "WRITE_BATCH", 1)  # the item is written before its gold row
    run_import(write("pairs.csv", csv_text(rows)))

    stored = {e: (g, n) for e, g, n in Item.objects.values_list("external_id", "gold", "gold_note")}
    assert stored == {
        "T-1": ("candidate", "Only B cites the policy."),
        "T-2": ("", ""),
        "T-3": ("both_bad", ""),
    }


def test_long_form_gold_disagreeing_across_an_items_rows_is_an_error(write):
    rows = long_rows(2)
    rows[0]["gold"], rows[1]["gold"] = "gpt-4", "gpt-4o"
    errors = failed_import(write("pairs.csv", csv_text(rows)))

    assert errors == [
        "pairs.csv:3: gold: “gpt-4o” differs from “gpt-4” on line 2 for the same item “T-1”"
    ]
    assert not Item.objects.exists()


def test_jsonl_gold_and_reimport_with_another_gold_is_an_error(write):
    objects = [
        {"item_id": "J-1", "prompt": "Hi?", "system_a": "a", "response_a": "x",
         "system_b": "b", "response_b": "y", "gold": "b", "gold_note": "b is right"},
    ]  # fmt: skip
    run_import(write("pairs.jsonl", jsonl_text(objects)))
    assert Item.objects.get().gold == "b"

    run_import(write("again.jsonl", jsonl_text(objects)))  # identical: nothing changes
    objects[0]["gold"] = "tie"
    errors = failed_import(write("changed.jsonl", jsonl_text(objects)))
    assert errors == [
        "changed.jsonl:1: gold: differs from the stored item “J-1” in dataset “Support A/B”"
    ]
    assert Item.objects.get().gold == "b"
