"""Aggregation: build the statistics' frames from a few set-based queries, run them, store a Report.

Frames (see reviews/reports/stats.py): prefs [item_id, reviewer, preference, candidate_left,
duration_seconds, len_diff], scores [item_id, reviewer, criterion, target, value], item_meta
[item_id, key, value]. Reviewers appear only as stable pseudonyms, never as emails or names.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Max
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Length
from django.utils import timezone
from psycopg import sql

from reviews.exports.writing import reviewer_pseudonym
from reviews.models import Campaign, CampaignItem, Judgment, Report
from reviews.reports import calibration, decision, gates, quality_frames, stats

logger = logging.getLogger(__name__)

PREFS_COLUMNS = [
    "item_id",
    "reviewer",
    "preference",
    "candidate_left",
    "duration_seconds",
    "len_diff",
]
SCORES_COLUMNS = ["item_id", "reviewer", "criterion", "target", "value"]
META_COLUMNS = ["item_id", "key", "value"]
CHUNK = 20_000
REFUSAL_JUDGE = "refusal_metric"
_TRUE = {"1", "true", "pass", "yes", "1.0"}
_FALSE = {"0", "false", "fail", "no", "0.0"}


def current_judgments(campaign_id: int):
    return Judgment.objects.filter(campaign_id=campaign_id, is_current=True)


def state_key(campaign_id: int) -> str:
    """Identifies the current judgments: count, last id and last submission time."""
    state = current_judgments(campaign_id).aggregate(
        n=Count("id"), last_id=Max("id"), last_at=Max("submitted_at")
    )
    return _key(state["n"], state["last_id"], state["last_at"])


def _key(n: int, last_id: int | None, last_at) -> str:
    return f"{n}:{last_id or 0}:{last_at.isoformat() if last_at else ''}"


def calibratable_criteria(rubric: list[dict]) -> list[dict]:
    """Per-response criteria with a pass / fail reading: binary, or a scale with pass_threshold."""
    return [
        c
        for c in rubric
        if c.get("per", "response") == "response"
        and (c.get("kind") == "binary" or c.get("pass_threshold") is not None)
    ]


def refusal_judged(criterion: dict) -> bool:
    """Whether the built-in refusal metric (datasets/metrics.py) stands in as this criterion's
    judge when the pairs file gave no auto_<criterion>: only on the rubric's explicit
    `"judge": "refusal_metric"`. Not by name: a criterion called "refusal" may mean either
    direction, and a stand-in judge moves the decision onto the calibrated basis."""
    return criterion.get("judge") == REFUSAL_JUDGE


def _judge_verdicts(items: pd.DataFrame, criterion: dict, i: int) -> tuple[dict, str | None]:
    """Per system: item_id -> the judge's pass verdict, and which judge gave it: the pairs file's
    auto_<criterion> ("auto_<name>"), else for a refusal-judged criterion the refusal metric.

    The metric says whether the response refused; a detected refusal is read as the worse outcome
    for the criterion: "fail" on a higher-is-better criterion (refusal_ok: the judge estimates
    "did not refuse", which equals "refused only when it should" on prompts that merit an answer),
    the positive label on a lower-is-better one (a refusal where none was due). How often a
    refusal was in fact due is what the calibration's sensitivity / specificity then measure."""
    frame = items.set_index("item_id")

    def read(prefix: str) -> dict[str, pd.Series]:
        return {
            system: frame[f"{prefix}{side}{i}"].map(_verdict).dropna().astype(bool)
            for system, side in (("baseline", "b"), ("candidate", "c"))
        }

    judge = read("")
    if not (judge["baseline"].empty and judge["candidate"].empty):
        return judge, f"auto_{criterion['name']}"
    if not refusal_judged(criterion) or f"rb{i}" not in frame:
        return judge, None
    refused = read("r")
    if criterion.get("direction") == "lower_is_better":
        return refused, REFUSAL_JUDGE
    return {system: ~verdicts for system, verdicts in refused.items()}, REFUSAL_JUDGE


def refusal_verdict(refused: Any, criterion: dict) -> bool | None:
    """One response's stand-in verdict from its stored metrics.refusal (see _judge_verdicts)."""
    value = _verdict(refused)
    if value is None:
        return None
    return value if criterion.get("direction") == "lower_is_better" else not value


def _verdict(value: Any) -> bool | None:
    """An automated verdict (1/0, true/false, pass/fail) as a bool; anything else as None."""
    if value is None:
        return None
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def _flatten_scores(rows: np.ndarray, scores: list[dict]) -> pd.DataFrame:
    """{"criterion": {"target": value}} per judgment -> long rows (row, criterion, target, value).

    One comprehension per chunk: pandas.json_normalize deep-copies every record and was ten times
    slower on this shape.
    """
    flat = [
        (row, criterion, target, value)
        for row, by_criterion in zip(rows.tolist(), scores, strict=True)
        if isinstance(by_criterion, dict)
        for criterion, by_target in by_criterion.items()
        if isinstance(by_target, dict)
        for target, value in by_target.items()
        if value is not None
    ]
    frame = pd.DataFrame.from_records(flat, columns=["row", "criterion", "target", "value"])
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame.astype({"row": np.int64, "criterion": "category", "target": "category"})


def _judgment_frames(
    campaign_id: int, rubric: list[dict]
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Current judgments as (prefs without len_diff, scores, state key)."""
    if connection.vendor == "postgresql":
        return _judgment_frames_copy(campaign_id, rubric)
    return _judgment_frames_orm(campaign_id)


def _score_columns(rubric: list[dict]) -> list[tuple[str, str]]:
    return [
        (c["name"], target)
        for c in rubric
        for target in (("pair",) if c.get("per") == "pair" else ("baseline", "candidate"))
    ]


JUDGMENT_LINES_PER_CHUNK = 20_000


def _judgments_csv_sql(campaign_id: int, columns: list[tuple[str, str]]) -> sql.Composed:
    """CSV lines of the current judgments, 20,000 to a row of the result.

    Measured on 1,000,000 judgments: COPY sends one message per row, and reading a million of
    them through psycopg cost ~5 s of Python; grouped like this the same data arrives in 50
    rows. Scores are extracted by PostgreSQL (a column per criterion and target; each
    criterion's object looked up once in the LATERAL), which took 4.2 s where decoding the JSON
    in Python through the ORM took over 100 s.
    """
    criteria = list(dict.fromkeys(name for name, _ in columns))
    alias = {name: sql.Identifier(f"c{i}") for i, name in enumerate(criteria)}
    lookups = sql.SQL(", ").join(
        sql.SQL("j.scores -> {} AS {}").format(sql.Literal(name), alias[name]) for name in criteria
    )
    # Only JSON numbers are scores; anything else is left empty (never breaks the CSV).
    extracted = [
        sql.SQL(
            "CASE WHEN jsonb_typeof(s.{a} -> {t}) = 'number' THEN s.{a} ->> {t} ELSE '' END"
        ).format(a=alias[name], t=sql.Literal(target))
        for name, target in columns
    ]
    fields = [
        sql.SQL("j.id"), sql.SQL("j.item_id"), sql.SQL("j.reviewer_id"), sql.SQL("j.preference"),
        sql.SQL("CASE WHEN NOT j.placement_known THEN '' WHEN j.candidate_left THEN '1' "
                "ELSE '0' END"),
        sql.SQL("coalesce(j.duration_seconds::text, '')"),
        *extracted,
    ]  # fmt: skip
    return sql.SQL(
        "SELECT string_agg(line, E'\\n') FROM ("
        " SELECT j.id / {per} AS chunk, concat_ws(',', {fields}) AS line"
        " FROM reviews_judgment j{lateral}"
        " WHERE j.campaign_id = {campaign} AND j.is_current) lines"
        " GROUP BY chunk"
    ).format(
        per=sql.Literal(JUDGMENT_LINES_PER_CHUNK),
        fields=sql.SQL(", ").join(fields),
        lateral=sql.SQL(" CROSS JOIN LATERAL (SELECT {}) s").format(lookups)
        if criteria else sql.SQL(""),
        campaign=sql.Literal(int(campaign_id)),
    )  # fmt: skip


def _judgment_frames_copy(
    campaign_id: int, rubric: list[dict]
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """PostgreSQL: the judgments as CSV built by the server, parsed by pandas' C reader, in a
    repeatable-read snapshot (when this is the outermost transaction) so that the state key
    matches the rows."""
    columns = _score_columns(rubric)
    names = ["id", "item_id", "reviewer_id", "preference", "candidate_left", "duration_seconds"]
    score_names = [f"s{i}" for i in range(len(columns))]
    outermost = not connection.in_atomic_block
    buffer = io.BytesIO()
    with transaction.atomic(), connection.cursor() as wrapper:
        if outermost:
            wrapper.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        key = state_key(campaign_id)
        cursor = wrapper.cursor
        cursor.execute(_judgments_csv_sql(campaign_id, columns))
        for (lines,) in cursor:
            buffer.write(lines.encode())
            buffer.write(b"\n")
    buffer.seek(0)
    wide = pd.read_csv(
        buffer,
        header=None,
        names=names + score_names,
        dtype={"id": np.int64, "item_id": np.int64, "reviewer_id": np.int64,
               "preference": "category", "candidate_left": float, "duration_seconds": float,
               **dict.fromkeys(score_names, float)},
    )  # fmt: skip
    buffer = None  # the CSV text (~50 MB at 1,000,000 judgments) is not needed any more
    raw = pd.DataFrame(
        {
            "item_id": wide["item_id"].to_numpy(),
            "reviewer_id": wide["reviewer_id"].to_numpy(),
            "preference": wide["preference"].cat.set_categories(stats.PREFERENCES),
            # Copies: a view would keep the whole float block of the scores alive.
            "candidate_left": wide["candidate_left"].to_numpy().copy(),
            "duration_seconds": wide["duration_seconds"].to_numpy().copy(),
        }
    )
    # The long score rows written straight into arrays of their final size: lists of per-column
    # pieces joined with np.concatenate held every row twice (~110 MB more at the peak on
    # 1,000,000 judgments), and int64 codes cut down to int8 afterwards twice more.
    kept = [np.flatnonzero(~np.isnan(wide[name].to_numpy())) for name in score_names]
    lengths = [len(rows) for rows in kept]
    total = sum(lengths)
    row = np.empty(total, dtype=np.int64)
    value = np.empty(total, dtype=float)
    start = 0
    for name, rows in zip(score_names, kept, strict=True):
        row[start : start + len(rows)] = rows
        value[start : start + len(rows)] = wide[name].to_numpy()[rows]
        start += len(rows)
    del kept, wide
    # Categoricals built from codes: factorizing 7,000,000 repeated strings cost ~1 s.
    criteria = list(dict.fromkeys(name for name, _ in columns))
    targets = ["baseline", "candidate", "pair"]
    criterion_codes = np.repeat(
        np.array([criteria.index(n) for n, _ in columns], dtype=np.int8), lengths
    )
    target_codes = np.repeat(
        np.array([targets.index(t) for _, t in columns], dtype=np.int8), lengths
    )
    flat = pd.DataFrame(
        {
            "row": row,
            "criterion": pd.Categorical.from_codes(criterion_codes, criteria),
            "target": pd.Categorical.from_codes(target_codes, targets),
            "value": value,
        }
    )
    return raw, flat, key


def _shown_left(left: Iterable[bool], known: Iterable[bool]) -> np.ndarray:
    """1.0 / 0.0 where the candidate was shown on the left; NaN where the placement is unknown
    (imported without a left_system column), so that those stay out of the position-bias figure."""
    return np.asarray(
        [float(lft) if knw else np.nan for lft, knw in zip(left, known, strict=True)],
        dtype=float,
    )


def _judgment_frames_orm(campaign_id: int) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Other databases: read in chunks so that the scores JSON of a million judgments is never
    held as Python objects at once."""
    query = (
        current_judgments(campaign_id)
        .order_by()
        .values_list(
            "id",
            "item_id",
            "reviewer_id",
            "preference",
            "candidate_left",
            "duration_seconds",
            "submitted_at",
            "scores",
            "placement_known",
        )
    )
    prefs_parts, score_parts = [], []
    n, last_id, last_at, offset = 0, None, None, 0
    chunk: list[tuple] = []

    def flush() -> None:
        nonlocal offset, last_id, last_at
        ids, items, reviewers, preference, left, seconds, at, scores, known = zip(
            *chunk, strict=True
        )
        rows = np.arange(offset, offset + len(chunk))
        prefs_parts.append(
            pd.DataFrame(
                {
                    "item_id": np.asarray(items, dtype=np.int64),
                    "reviewer_id": np.asarray(reviewers, dtype=np.int64),
                    "preference": pd.Categorical(preference, categories=stats.PREFERENCES),
                    "candidate_left": _shown_left(left, known),
                    "duration_seconds": np.asarray(
                        [np.nan if s is None else s for s in seconds], dtype=float
                    ),
                },
                index=rows,
            )
        )
        score_parts.append(_flatten_scores(rows, [s or {} for s in scores]))
        last_id = max(ids) if last_id is None else max(last_id, *ids)
        last_at = max(at) if last_at is None else max(last_at, *at)
        offset += len(chunk)
        chunk.clear()

    for row in query.iterator(chunk_size=CHUNK):
        chunk.append(row)
        n += 1
        if len(chunk) == CHUNK:
            flush()
    if chunk:
        flush()
    prefs = (
        pd.concat(prefs_parts)
        if prefs_parts
        else pd.DataFrame(
            {
                "item_id": np.zeros(0, np.int64),
                "reviewer_id": np.zeros(0, np.int64),
                "preference": pd.Categorical([], categories=stats.PREFERENCES),
                "candidate_left": np.zeros(0, float),
                "duration_seconds": np.zeros(0),
            }
        )
    )
    scores = (
        pd.concat(score_parts, ignore_index=True)
        if score_parts
        else _flatten_scores(np.zeros(0, np.int64), [])
    )
    return prefs, scores, _key(n, last_id, last_at)


def _item_rows(campaign: Campaign, criteria: list[dict]) -> pd.DataFrame:
    """One row per campaign item: length difference (candidate - baseline characters), item
    metadata, and each calibratable criterion's automated verdict per system."""
    autos = {}
    for i, c in enumerate(criteria):
        key = f"auto_{c['name']}"
        autos[f"b{i}"] = KeyTextTransform(key, "baseline_response__metadata")
        autos[f"c{i}"] = KeyTextTransform(key, "candidate_response__metadata")
        if refusal_judged(c):
            autos[f"rb{i}"] = KeyTextTransform("refusal", "baseline_response__metrics")
            autos[f"rc{i}"] = KeyTextTransform("refusal", "candidate_response__metrics")
    query = (
        CampaignItem.objects.filter(campaign=campaign)
        .order_by()
        .annotate(
            len_diff=Length("candidate_response__text") - Length("baseline_response__text"),
            metadata=F("item__metadata"),
            **autos,
        )
        .values_list("item_id", "len_diff", "metadata", *autos)
    )
    return pd.DataFrame.from_records(
        query.iterator(chunk_size=CHUNK), columns=["item_id", "len_diff", "metadata", *autos]
    )


def _copy_csv(cursor, query: sql.Composable, **read_csv) -> pd.DataFrame:
    buffer = io.BytesIO()
    with cursor.copy(query) as copy:
        for block in copy:
            buffer.write(block)
    buffer.seek(0)
    return pd.read_csv(buffer, header=None, **read_csv)


def _item_frames_copy(campaign_id: int, criteria: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PostgreSQL: the item rows (without metadata) and the item metadata as key / value rows,
    each one COPY: 333,334 items took 8.4 s through the ORM, ~2 s this way (measured)."""
    autos, names = [], []
    for i, c in enumerate(criteria):
        key = sql.Literal(f"auto_{c['name']}")
        autos += [
            sql.SQL("b.metadata ->> {}").format(key),
            sql.SQL("c.metadata ->> {}").format(key),
        ]
        names += [f"b{i}", f"c{i}"]
        if refusal_judged(c):
            autos += [sql.SQL("b.metrics ->> 'refusal'"), sql.SQL("c.metrics ->> 'refusal'")]
            names += [f"rb{i}", f"rc{i}"]
    campaign = sql.Literal(int(campaign_id))
    items_sql = sql.SQL(
        "COPY (SELECT ci.item_id, char_length(c.text) - char_length(b.text){}"
        " FROM reviews_campaignitem ci"
        " JOIN datasets_response b ON b.id = ci.baseline_response_id"
        " JOIN datasets_response c ON c.id = ci.candidate_response_id"
        " WHERE ci.campaign_id = {}) TO STDOUT (FORMAT csv)"
    ).format(sql.SQL("").join(sql.SQL(", ") + a for a in autos), campaign)
    meta_sql = sql.SQL(
        "COPY (SELECT ci.item_id, m.key, m.value FROM reviews_campaignitem ci"
        " JOIN datasets_item i ON i.id = ci.item_id"
        " CROSS JOIN LATERAL jsonb_each_text(CASE WHEN jsonb_typeof(i.metadata) = 'object'"
        " THEN i.metadata ELSE '{{}}' END) m"
        " WHERE ci.campaign_id = {}"
        " AND jsonb_typeof(i.metadata -> m.key) IN ('string', 'number', 'boolean'))"
        " TO STDOUT (FORMAT csv)"
    ).format(campaign)
    with connection.cursor() as wrapper:
        items = _copy_csv(
            wrapper.cursor, items_sql, names=["item_id", "len_diff", *names],
            dtype={"item_id": np.int64, "len_diff": float, **dict.fromkeys(names, str)},
            keep_default_na=False,
        )  # fmt: skip
        meta = _copy_csv(
            wrapper.cursor, meta_sql, names=META_COLUMNS,
            dtype={"item_id": np.int64, "key": str, "value": str}, keep_default_na=False,
        )  # fmt: skip
    for name in names:  # an absent verdict is None, as on the ORM path
        items[name] = items[name].where(items[name] != "", None)
    return items, meta


def _item_frames(campaign: Campaign, criteria: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    if connection.vendor == "postgresql":
        return _item_frames_copy(campaign.pk, criteria)
    items = _item_rows(campaign, criteria)
    return items, _item_meta(items)


def _item_frames_in_thread(campaign: Campaign, criteria: list[dict]):
    """Read the items on a second connection while this one reads the judgments: PostgreSQL
    then works on both cores. Its own connection is closed when done."""
    try:
        return _item_frames(campaign, criteria)
    finally:
        connection.close()


def _item_meta(items: pd.DataFrame) -> pd.DataFrame:
    rows = [
        (item_id, str(key), str(value))
        for item_id, meta in zip(items["item_id"], items["metadata"], strict=True)
        if isinstance(meta, dict)
        for key, value in meta.items()
        if isinstance(value, str | int | float | bool)
    ]
    return pd.DataFrame.from_records(rows, columns=META_COLUMNS)


def build_frames(campaign: Campaign) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(prefs, scores, item_meta) over the current judgments (see reviews/reports/stats.py)."""
    prefs, scores, _, item_meta, _ = _frames(campaign, criteria=[])
    return prefs, scores, item_meta


def _frames(campaign: Campaign, *, criteria: list[dict]):
    rubric = list(campaign.rubric.criteria or [])
    # Outside a transaction (a worker, the command) the items come from a second connection in
    # parallel; inside one (tests, callers' atomic blocks) a second connection would not see
    # uncommitted rows, so both reads share this connection.
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(_item_frames_in_thread, campaign, criteria)
            raw, flat, key = _judgment_frames(campaign.pk, rubric)
            items, item_meta = pending.result()
    else:
        raw, flat, key = _judgment_frames(campaign.pk, rubric)
        items, item_meta = _item_frames(campaign, criteria)
    raw, flat = quality_frames.live_only(campaign, raw, flat)
    ids, users = pd.factorize(raw["reviewer_id"])
    # The same pseudonyms as the analysts' exports, so the two can be joined.
    reviewer = pd.Categorical.from_codes(ids, [reviewer_pseudonym(int(u)) for u in users])
    len_diff = pd.Series(items["len_diff"].to_numpy(), index=items["item_id"].to_numpy())
    prefs = pd.DataFrame(
        {
            "item_id": raw["item_id"].to_numpy(),
            "reviewer": reviewer,
            "preference": raw["preference"].to_numpy(),
            "candidate_left": raw["candidate_left"].to_numpy(),
            "duration_seconds": raw["duration_seconds"].to_numpy(),
            "len_diff": raw["item_id"].map(len_diff).to_numpy(dtype=float),
        },
        columns=PREFS_COLUMNS,
    )
    rows = flat["row"].to_numpy(dtype=np.int64)
    scores = pd.DataFrame(
        {
            "item_id": prefs["item_id"].to_numpy()[rows],
            "reviewer": reviewer[rows] if len(rows) else pd.Categorical([]),
            "criterion": flat["criterion"].astype(str).to_numpy(),
            "target": flat["target"].astype(str).to_numpy(),
            "value": flat["value"].to_numpy(dtype=float),
        },
        columns=SCORES_COLUMNS,
    )
    return prefs, scores, items, item_meta, key


def _human_verdicts(scores: pd.DataFrame, criterion: dict) -> dict[str, pd.Series]:
    """Per system: item_id -> majority human verdict (ties between pass and fail are left out)."""
    rows = scores[scores["criterion"] == criterion["name"]]
    threshold = criterion.get("pass_threshold")
    passed = rows["value"] >= (threshold if threshold is not None else 0.5)
    share = passed.groupby([rows["target"], rows["item_id"]]).mean()
    out = {}
    for system in ("baseline", "candidate"):
        s = share[system] if system in share.index.get_level_values(0) else pd.Series(dtype=float)
        out[system] = (s[s != 0.5] > 0.5).astype(bool)
    return out


def _confusion(human: pd.Series, judge: pd.Series) -> dict[str, int]:
    both = human.index.intersection(judge.index)
    counts = calibration.confusion_counts(
        human.loc[both].to_numpy(bool), judge.loc[both].to_numpy(bool)
    )
    only = judge[~judge.index.isin(human.index)]
    return {**counts, "n_judge_only": len(only), "k_judge_positive": int(only.sum())}


def calibrate(
    campaign: Campaign, scores: pd.DataFrame, items: pd.DataFrame, criteria: list[dict]
) -> tuple[dict, dict]:
    """The report's calibration and decision sections (reviews/reports/calibration.py)."""
    threshold = campaign.decision_threshold
    results: dict[str, dict] = {}
    lower = []
    for i, c in enumerate(criteria):
        judge, source = _judge_verdicts(items, c, i)
        if judge["baseline"].empty and judge["candidate"].empty:
            continue
        human = _human_verdicts(scores, c)
        lower_is_better = c.get("direction") == "lower_is_better"
        if lower_is_better:
            lower.append(c["name"])
        results[c["name"]] = calibration.calibrate_criterion(
            _confusion(human["baseline"], judge["baseline"]),
            _confusion(human["candidate"], judge["candidate"]),
            margin=campaign.margin,
            lower_is_better=lower_is_better,
            critical=bool(c.get("critical")),
            threshold=threshold,
        ) | {"judge": source}
    if not results:
        return {}, {"verdict": None, "threshold": threshold, "more_labels_needed": None}
    verdict = calibration.decision(
        results,
        threshold=threshold,
        margin=campaign.margin,
        lower_is_better_criteria=lower,
        seed=campaign.seed,
    )
    return results, verdict


def judge_preferences(campaign: Campaign) -> dict[int, str]:
    """item_id -> the pairs file's auto_preference (a system's name, tie or both_bad), read as
    candidate / baseline / tie / both_bad; other values are no verdict."""
    names = {
        campaign.baseline.name.casefold(): "baseline",
        campaign.candidate.name.casefold(): "candidate",
        **{p: p for p in stats.PREFERENCES},
    }
    rows = (
        CampaignItem.objects.filter(campaign=campaign)
        .exclude(item__auto_preference="")
        .values_list("item_id", "item__auto_preference")
    )
    verdicts = {item: names.get(value.strip().casefold()) for item, value in rows.iterator()}
    return {item: verdict for item, verdict in verdicts.items() if verdict is not None}


def decide(
    campaign: Campaign,
    cal: dict[str, Any],
    preference: dict[str, Any],
    scores: pd.DataFrame,
    calibrated: dict[str, Any],
    *,
    n_items: int,
) -> dict[str, Any]:
    """The report's decision (reviews/reports/decision.py): "calibrated" when the judge's
    verdicts were calibrated, else "human" on the reviewers' own labels."""
    criteria = {name: entry for name, entry in cal.items() if name != "preference"}
    pref_cal = cal.get("preference") or {}
    threshold = campaign.decision_threshold
    if criteria or pref_cal.get("p_non_inferior") is not None:
        gating = [n for n, e in criteria.items() if e.get("critical")] or list(criteria)
        judged = pref_cal.get("p_non_inferior") is not None
        return decision.decide(
            basis="calibrated",
            threshold=threshold,
            preference=pref_cal["p_non_inferior"] if judged else preference.get("p_non_inferior"),
            preference_gates=judged,
            criteria={n: criteria[n]["difference"]["p_non_inferior"] for n in gating},
            more_labels_needed=calibrated.get("more_labels_needed"),
        )
    rubric = list(campaign.rubric.criteria or [])
    prepared = stats._prepare_scores(scores)
    critical = [c for c in rubric if c.get("critical") and c.get("per", "response") == "response"]
    return decision.human_decision(
        preference=preference,
        criteria={
            c["name"]: stats.criterion_non_inferiority(
                stats._criterion_rows(prepared, c), c, margin=campaign.margin
            )
            for c in critical
        },
        threshold=threshold,
        margin=campaign.margin,
        n_items=n_items,
    )


def _preference_section(prefs: pd.DataFrame, margin: float) -> dict[str, Any]:
    """What the decision reads of the report's preference section, for a subset of items."""
    design = stats.preference_uncertainty(prefs, margin=margin)
    return {
        "counts": stats.preference_counts(prefs),
        "win_rate": design["rate"],
        "p_non_inferior": design["p_non_inferior"],
        "design_effect": design["design_effect"],
    }


def _decide_on(
    campaign: Campaign,
    frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
    criteria: list[dict],
    judge_prefs: dict[int, str],
    *,
    preference: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(calibration, decision) over these frames (the campaign's, or one segment's)."""
    prefs, scores, items = frames
    cal, calibrated = calibrate(campaign, scores, items, criteria)
    judged = calibration.calibrate_preference(
        stats.majority_preference(prefs), judge_prefs, margin=campaign.margin
    )
    if judged is not None:
        cal["preference"] = judged
    preference = preference or _preference_section(prefs, campaign.margin)
    n_items = int(prefs["item_id"].nunique())
    return cal, decide(campaign, cal, preference, scores, calibrated, n_items=n_items)


def measure_values(campaign: Campaign, measures: set[str]) -> dict[str, dict[str, dict]]:
    """measure -> {"baseline" / "candidate": {item_id: value}} from the responses' numeric
    metadata and automatic metrics (only when the campaign sets operational gates)."""
    values: dict[str, dict[str, dict]] = {m: {"baseline": {}, "candidate": {}} for m in measures}
    rows = (
        CampaignItem.objects.filter(campaign=campaign)
        .order_by()
        .values_list(
            "item_id",
            "baseline_response__metadata",
            "baseline_response__metrics",
            "candidate_response__metadata",
            "candidate_response__metrics",
        )
    )
    for item, b_meta, b_metrics, c_meta, c_metrics in rows.iterator(chunk_size=CHUNK):
        for system, sources in (
            ("baseline", (b_meta, b_metrics)),
            ("candidate", (c_meta, c_metrics)),
        ):
            for source in sources:
                if not isinstance(source, dict):
                    continue
                for measure in measures & source.keys():
                    value = _number(source[measure])
                    if value is not None:
                        values[measure][system].setdefault(item, value)
    return values


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


MAX_SEGMENTS = 20
_GATE_VERDICTS = {"pass": "migrate", "fail": "do_not_migrate", "uncertain": "need_more_labels"}


def gate_and_segment(
    campaign: Campaign,
    report: dict[str, Any],
    frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
    item_meta: pd.DataFrame,
    criteria: list[dict],
    judge_prefs: dict[int, str],
) -> None:
    """Operational gates (reviews/reports/gates.py) and per-segment verdicts into the decision:
    `decision.gates` {rule: figures}, `decision.segments` {value: {verdict, probability, ...}},
    and the overall verdict the strictest of the quality verdict, the gates and the segments."""
    made = report["decision"]
    rules = list(campaign.operational_gates or [])
    threshold = campaign.decision_threshold
    values = measure_values(campaign, {g["measure"] for g in rules}) if rules else {}
    verdicts = [made["verdict"]]
    if rules:
        made["gates"] = gates.evaluate_gates(rules, values, threshold=threshold, seed=campaign.seed)
        verdicts += [_GATE_VERDICTS[g["verdict"]] for g in made["gates"].values()]
    key = campaign.segment_key
    if key:
        made["segment_key"] = key
        made["segments"] = {}
        rows = item_meta[item_meta["key"] == key]
        by_value = rows.groupby("value")["item_id"].apply(set)
        for value, members in list(by_value.items())[:MAX_SEGMENTS]:
            prefs, scores, items = frames
            subset = (
                prefs[prefs["item_id"].isin(members)],
                scores[scores["item_id"].isin(members)],
                items[items["item_id"].isin(members)],
            )
            judged = {i: v for i, v in judge_prefs.items() if i in members}
            _, segment = _decide_on(campaign, subset, criteria, judged)
            segment_verdicts = [segment["verdict"]]
            if rules:
                segment["gates"] = gates.evaluate_gates(
                    rules, values, threshold=threshold, seed=campaign.seed, items=members
                )
                segment_verdicts += [
                    _GATE_VERDICTS[g["verdict"]] for g in segment["gates"].values()
                ]
            made["segments"][str(value)] = {
                "verdict": gates.strictest(segment_verdicts),
                "basis": segment["basis"],
                "probability": segment["probability"],
                "n_items": int(subset[0]["item_id"].nunique()),
                "more_labels_needed": segment["more_labels_needed"],
                **({"gates": segment["gates"]} if rules else {}),
            }
            verdicts.append(made["segments"][str(value)]["verdict"])
    verdict = gates.strictest(verdicts)
    if verdict != made["verdict"]:
        made["verdict"] = verdict
        if verdict != "need_more_labels":
            made["more_labels_needed"] = None


def aggregate(campaign: Campaign) -> dict[str, Any]:
    """The full report (DESIGN.md, "Report") for the campaign's current judgments."""
    return _aggregate(campaign)[0]


def _aggregate(campaign: Campaign) -> tuple[dict[str, Any], str]:
    rubric = list(campaign.rubric.criteria or [])
    criteria = calibratable_criteria(rubric)
    prefs, scores, items, item_meta, key = _frames(campaign, criteria=criteria)
    answered, truth = prefs, quality_frames.adjudicated(campaign, prefs)
    if truth is not None:
        prefs = truth
    report = {
        "campaign": campaign.slug,
        "baseline": campaign.baseline.name,
        "candidate": campaign.candidate.name,
        "n_items": int(prefs["item_id"].nunique()),
        "n_judgments": len(prefs),
        "n_reviewers": int(prefs["reviewer"].nunique()),
        **stats.compute_report(
            prefs,
            scores,
            item_meta,
            rubric=rubric,
            margin=campaign.margin,
            seed=campaign.seed,
        ),
    }
    if truth is not None:
        quality_frames.keep_raw_agreement(report, answered)
    key += quality_frames.adjudication_key(campaign.pk)
    judge_prefs = judge_preferences(campaign)
    frames = (prefs, scores, items)
    report["calibration"], report["decision"] = _decide_on(
        campaign, frames, criteria, judge_prefs, preference=report["preference"]
    )
    if campaign.operational_gates or campaign.segment_key:
        gate_and_segment(campaign, report, frames, item_meta, criteria, judge_prefs)

    def decide_without(flagged: list) -> dict[str, Any]:
        kept = (
            prefs[~prefs["reviewer"].isin(flagged)],
            scores[~scores["reviewer"].isin(flagged)],
            items,
        )
        return _decide_on(campaign, kept, criteria, judge_prefs)[1]

    quality_frames.add_quality(report, campaign, decide_without=decide_without)
    return report, key


def _claim_report(campaign_id: int, key: str) -> Report:
    """The oldest queued report of the campaign (the UI made it), or a new one, now running."""
    now = timezone.now()
    for pk in _pks(Report.objects.filter(campaign_id=campaign_id, status=Report.Status.QUEUED)):
        claimed = Report.objects.filter(pk=pk, status=Report.Status.QUEUED).update(
            status=Report.Status.RUNNING, started_at=now, state_key=key
        )
        if claimed:
            return Report.objects.get(pk=pk)
    return Report.objects.create(
        campaign_id=campaign_id, status=Report.Status.RUNNING, started_at=now, state_key=key
    )


def _pks(query) -> Iterable[int]:
    return query.order_by("created_at", "pk").values_list("pk", flat=True)[:5]


def _done(campaign_id: int, key: str) -> Report | None:
    return Report.objects.filter(
        campaign_id=campaign_id, state_key=key, status=Report.Status.DONE
    ).first()


def run_aggregation(*, campaign_id: int) -> Report:
    """Compute and store the campaign's report; idempotent per state of its current judgments.

    Returns the DONE report for the current state (an existing one when nothing changed, or the
    winner of a concurrent run). On any error the claimed row ends FAILED and the error re-raises.
    """
    campaign = Campaign.objects.with_systems().get(pk=campaign_id)
    # Adjudicated labels change the figures without changing the judgments.
    existing = _done(
        campaign_id, state_key(campaign_id) + quality_frames.adjudication_key(campaign_id)
    )
    if existing is not None:
        # Requests for a recompute of unchanged data are answered by the existing report.
        Report.objects.filter(campaign_id=campaign_id, status=Report.Status.QUEUED).delete()
        return existing
    report = _claim_report(campaign_id, "")
    started = time.perf_counter()
    try:
        result, key = _aggregate(campaign)
        report.result, report.state_key, report.n_judgments = result, key, result["n_judgments"]
        report.status, report.finished_at = Report.Status.DONE, timezone.now()
        report.seconds = time.perf_counter() - started
        try:
            with transaction.atomic():
                report.save(
                    update_fields=[
                        "result",
                        "state_key",
                        "n_judgments",
                        "status",
                        "finished_at",
                        "seconds",
                    ]
                )
        except IntegrityError:  # another run stored this state first (one_done_report_per_state)
            winner = _done(campaign_id, key)
            if winner is None:
                raise
            Report.objects.filter(pk=report.pk).delete()
            return winner
    except Exception as exc:
        _fail(report, exc, time.perf_counter() - started)
        raise
    _close_abandoned(campaign_id)
    if campaign.webhook_url:
        from evalsite.queue import enqueue_on_commit

        enqueue_on_commit("reviews.send_webhook", report.pk)
    return report


def _close_abandoned(campaign_id: int) -> int:
    """Mark FAILED the runs whose worker died (killed, machine lost): a run older than Celery's
    hard time limit cannot still be running. Their task was redelivered, or a later run (this
    one) completed the report, so they would otherwise stay "running" for ever."""
    limit = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    return Report.objects.filter(
        campaign_id=campaign_id,
        status=Report.Status.RUNNING,
        started_at__lt=timezone.now() - limit,
    ).update(
        status=Report.Status.FAILED,
        error="The worker stopped before finishing; a later run completed the report.",
        finished_at=timezone.now(),
    )


def _fail(report: Report, exc: Exception, seconds: float) -> None:
    logger.exception("Aggregation of campaign %s failed", report.campaign_id)
    try:
        Report.objects.filter(pk=report.pk).update(
            status=Report.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
            seconds=seconds,
        )
    except Exception:  # the database itself may be what failed
        logger.exception("Could not mark report %s failed", report.pk)
    report.status = Report.Status.FAILED


def request_report(*, campaign: Campaign) -> Report:
    """Queue an aggregation after commit; a QUEUED Report row lets the UI show its progress."""
    from evalsite.queue import enqueue_on_commit

    with transaction.atomic():
        pending = (
            Report.objects.filter(
                campaign=campaign, status__in=[Report.Status.QUEUED, Report.Status.RUNNING]
            )
            .order_by("-created_at")
            .first()
        )
        report = pending or Report.objects.create(campaign=campaign, status=Report.Status.QUEUED)
        enqueue_on_commit("reviews.aggregate_campaign", campaign.pk)
    return report
