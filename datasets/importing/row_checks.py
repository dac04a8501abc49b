"""Checking one row of a pairs file, and what a checked row holds.

:class:`RowChecks` is the part of :class:`datasets.importing.parsing.PairsFile` that turns one row's
cells into a :class:`Row`, or into ``FILE:LINE: column: message`` errors: required values, sizes,
duplicates within the file, an item's fields agreeing across its rows, and (for CSV) whether each
metadata column is numeric throughout.
"""

import json
import math
import re
from dataclasses import dataclass

from datasets.importing.columns import (
    GOLD_ROLES,
    MAX_NAME_LENGTH,
    VERDICTS,
    Column,
    CsvPlan,
    Limits,
    number,
    numeric_looking,
    size_text,
)
from datasets.importing.errors import ErrorList

_BAD_JSON_CHARS = re.compile("[\x00\ud800-\udfff]")


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
    gold: str = ""
    gold_note: str = ""


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


@dataclass
class _ItemSeen:
    line: int
    digests: tuple
    gold: str = ""
    gold_note: str = ""
    gold_line: int = 0


class RowChecks:
    """Row-level checks; the reader (PairsFile) supplies the attributes declared here."""

    errors: ErrorList
    form: str | None
    kind: str
    limits: Limits
    columns: list[Column]
    numeric: dict[int, bool]
    systems: set[str]
    item_ids: set[str]
    n_rows: int
    n_responses: int
    _plan: CsvPlan | None
    # Optimistic typing (the one-pass import): a numeric-looking CSV metadata value is typed as
    # soon as it is read, while its column has been numeric so far. ``retype`` turns True when a
    # column already typed that way turns out not to be numeric after all.
    typing: bool = False
    typed_columns: set[int]
    retype: bool = False
    # Long form: gold answers given on a later row of an item than its first (item_id -> (gold,
    # note)); the writers set them on the item, which is written with its first row.
    late_gold: dict[str, tuple[str, str]]

    def _csv_row(self, line: int, values: list[str], seen: dict) -> Row | None:
        """The common case, kept fast: a CSV row whose fields are all well under 1 MB."""
        plan = self._plan
        if plan is None:
            plan = self._plan = CsvPlan(self.columns)
        values.append("")  # what an absent optional column reads as (index ABSENT)
        fields = {name: values[index] for name, index in plan.fields}
        fields["item_id"] = fields["item_id"].strip()
        fields["auto_preference"] = fields["auto_preference"].strip()
        fields["gold"] = fields["gold"].strip()
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
                if numeric_looking(value):
                    numeric[index] = True
                    if self.typing:
                        value = number(value)
                        self.typed_columns.add(index)
                else:
                    numeric[index] = False
                    self.retype = self.retype or index in self.typed_columns
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
            "gold": "",
            "gold_note": "",
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
                if len(value) > self.limits.metadata_keys:
                    errors.add(line, self._too_many_keys(len(value)), column.name)
                    continue
                for key, item in value.items():
                    if key in target:
                        errors.add(line, f"metadata key “{key}” given twice", column.name)
                    elif problem := self._metadata_problem(key, item):
                        errors.add(line, problem, column.name)
                    target[key] = item
                continue
            if isinstance(value, str):
                cell_bytes = self.limits.cell_bytes
                if len(value) > cell_bytes // 4 and len(value.encode()) > cell_bytes:
                    errors.add(line, f"field over {size_text(cell_bytes)}", column.name)
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
                        if numeric_looking(value):
                            self.numeric[position] = True
                            if self.typing:
                                value = number(value)
                                self.typed_columns.add(position)
                        else:
                            self.numeric[position] = False
                            self.retype = self.retype or position in self.typed_columns
                target = item_meta if role == "item_meta" else response_meta[column.side]
                if column.key in target:
                    errors.add(line, f"metadata key “{column.key}” given twice", column.name)
                elif self.kind == "jsonl" and (
                    problem := self._metadata_problem(column.key, value)
                ):
                    errors.add(line, problem, column.name)
                target[column.key] = value
            elif role == "system":
                systems[column.side] = value.strip()
            elif role == "response":
                texts[column.side] = value
            else:
                stripped = role in ("item_id", "auto_preference", "gold")
                fields[role] = value.strip() if stripped else value
        for owner, metadata in (("item", item_meta), *(
            (f"response {'AB'[side]}" if sides == 2 else "response", meta)
            for side, meta in enumerate(response_meta)
        )):  # fmt: skip
            if len(metadata) > self.limits.metadata_keys:
                errors.add(line, f"{owner} metadata: {self._too_many_keys(len(metadata))}")
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

    def _too_many_keys(self, n: int) -> str:
        return (
            f"{n:,} metadata keys, more than the limit of {self.limits.metadata_keys:,} "
            "(the IMPORT_MAX_METADATA_KEYS setting)"
        )

    def _metadata_problem(self, key: str, value) -> str | None:
        """A JSON metadata key or value past the limits (a CSV cell is bounded by its reader)."""
        if len(key) > MAX_NAME_LENGTH:
            return f"a metadata key is longer than {MAX_NAME_LENGTH} characters"
        if isinstance(value, str):
            size = len(value.encode()) if len(value) > self.limits.cell_bytes // 4 else 0
        elif isinstance(value, dict | list):
            size = len(json.dumps(value, ensure_ascii=False).encode())
        else:
            return None
        if size > self.limits.cell_bytes:
            return f"metadata “{key[:50]}” is over {size_text(self.limits.cell_bytes)}"
        return None

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
        self._check_gold(line, fields, systems if wide else None, add)

    def _check_gold(self, line: int, fields, systems: list[str] | None, add) -> None:
        """A gold answer names a side (wide: one of the row's systems), tie or both_bad."""
        gold = fields["gold"]
        if len(gold) > MAX_NAME_LENGTH:
            add(line, f"longer than {MAX_NAME_LENGTH} characters", "gold")
        elif gold and systems is not None and gold not in (*systems, *VERDICTS, *GOLD_ROLES):
            add(line, f"“{gold}” is neither system_a, system_b, baseline, candidate, tie nor "
                "both_bad", "gold")  # fmt: skip
        if fields["gold_note"].strip() and not gold and systems is not None:
            add(line, "a gold_note needs a gold answer on the same row", "gold_note")

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
            seen[item_id] = _ItemSeen(line, digests, fields["gold"], fields["gold_note"], line)
            self.item_ids.add(item_id)
            return
        self._check_gold_agrees(line, item_id, fields, earlier)
        names = ("prompt", "context", "reference", "auto_preference", "item metadata")
        given = (True, bool(fields["context"]), bool(fields["reference"]),
                 bool(fields["auto_preference"]), bool(item_meta))  # fmt: skip
        for name, mine, theirs, present in zip(names, digests, earlier.digests, given, strict=True):
            if present and mine != theirs:
                self.errors.add(
                    line, f"differs from line {earlier.line} for the same item “{item_id}”", name
                )

    def _check_gold_agrees(self, line: int, item_id: str, fields, earlier: _ItemSeen) -> None:
        """Long form: an item's gold may be on any of its rows, the same wherever it is given."""
        gold, note = fields["gold"], fields["gold_note"]
        if not gold and not note.strip():
            return
        if not earlier.gold and gold:
            earlier.gold, earlier.gold_note, earlier.gold_line = gold, note, line
            self.late_gold[item_id] = (gold, note)
            return
        if gold and gold != earlier.gold:
            self.errors.add(
                line, f"“{gold}” differs from “{earlier.gold}” on line {earlier.gold_line} for "
                f"the same item “{item_id}”", "gold",
            )  # fmt: skip
        elif note.strip() and note != earlier.gold_note:
            self.errors.add(
                line, f"differs from line {earlier.gold_line} for the same item “{item_id}”",
                "gold_note",
            )  # fmt: skip


def _json_type(value) -> str:
    return {bool: "true/false", int: "a number", float: "a number", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)  # fmt: skip
