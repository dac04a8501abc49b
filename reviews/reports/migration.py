"""The migration page's figures (issue #8) and the "next batch from the most informative items".

Plain functions over the latest DONE Report (DESIGN.md, "Report": ``calibration`` and ``decision``)
and the dataset's per-system summaries; no request needed. The one write, :func:`create_next_batch`,
goes through ``batches.create_batches_and_assign`` and is idempotent per report.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform

from datasets.pages.reads import dataset_overview
from reviews import access
from reviews.audit.events import record_audit
from reviews.campaigns import batches
from reviews.models import AuditEvent, Campaign, CampaignItem, Report
from reviews.reports import calibration, stats
from reviews.reports.aggregation import REFUSAL_JUDGE, calibratable_criteria, refusal_verdict
from reviews.reports.aggregation import _verdict as judge_verdict
from reviews.reports.decision import probability_text

if TYPE_CHECKING:
    from django.contrib.auth.models import User

SYSTEMS = ("baseline", "candidate")
VERDICT_WORDS = {"pass": "non-inferior", "fail": "worse", "uncertain": "undecided"}
DECISION_WORDS = {
    "migrate": "migrate",
    "do_not_migrate": "do not migrate",
    "need_more_labels": "need more labels",
}
NEXT_BATCH_MAX = 200  # items per informative batch: recompute the report before asking for more
NEXT_BATCH_VERB = "migration.next_batch"


# ----------------------------------------------------------------------------- reading


def latest_report(campaign: Campaign) -> Report | None:
    """The campaign's newest DONE report with a result (the one the report page shows)."""
    return (
        campaign.reports.filter(status=Report.Status.DONE, result__isnull=False)
        .order_by("-finished_at", "-pk")
        .first()
    )


def next_batch_event(campaign: Campaign, report: Report) -> AuditEvent | None:
    """The record of the informative batch already created from this report, if any."""
    return AuditEvent.objects.filter(
        campaign=campaign, verb=NEXT_BATCH_VERB, target=f"report:{report.pk}"
    ).first()


def page_context(campaign: Campaign, *, can_create_batch: bool) -> dict[str, Any]:
    """Everything the migration page shows, in a fixed handful of queries."""
    report = latest_report(campaign)
    rubric = list(campaign.rubric.criteria or [])
    context: dict[str, Any] = {
        "campaign": campaign,
        "report": report,
        "operational": operational_rows(campaign),
    }
    if report is None:
        context["sentence"] = (
            "No report yet: compute one on the report page, then come back for the decision."
        )
        context["needs"] = calibration_needs(rubric, has_verdicts=judge_columns(campaign, rubric))
        return context
    r = report.result
    cal, decision = r.get("calibration") or {}, r.get("decision") or {}
    margin = r["preference"]["margin"]
    n_unassigned = None
    if decision.get("verdict") == "need_more_labels":
        n_unassigned = CampaignItem.objects.filter(campaign=campaign, slots_taken=0).count()
        context["batch_event"] = next_batch_event(campaign, report)
        context["can_create_batch"] = can_create_batch and bool(criteria_of(cal))
        context["next_batch_size"] = min(next_batch_size(decision), n_unassigned)
        context["n_unassigned"] = n_unassigned
    rows = criterion_rows(cal, rubric)
    context |= {
        "r": r,
        "decision": decision,
        "margin_points": f"{100 * margin:g}-point",
        "sentence": decision_sentence(cal, decision, margin=margin, n_unassigned=n_unassigned),
        "rows": rows,
        "human_rows": human_rows(r, decision) if decision.get("basis") == "human" else [],
        "preference": r["preference"],
        "judge_preference": cal.get("preference"),
        "p_better_text": probability_text(r["preference"].get("p_candidate_better")),
        "gate_rows": [
            {
                "rule": rule,
                **figures,
                "p_text": probability_text(figures["probability"]),
                "verdict_words": VERDICT_WORDS.get(figures["verdict"], figures["verdict"]),
            }
            for rule, figures in (decision.get("gates") or {}).items()
        ],
        "segment_rows": [
            {
                "value": value,
                **figures,
                "p_text": probability_text(figures["probability"]),
                "verdict_words": DECISION_WORDS.get(figures["verdict"], figures["verdict"]),
            }
            for value, figures in (decision.get("segments") or {}).items()
        ],
    }
    if not rows:
        context["needs"] = calibration_needs(rubric, has_verdicts=judge_columns(campaign, rubric))
    return context


def criteria_of(cal: dict[str, dict]) -> dict[str, dict]:
    """The per-criterion calibrations (without the pairwise judge's, `preference`)."""
    return {name: entry for name, entry in cal.items() if name != "preference"}


def judge_columns(campaign: Campaign, rubric: list[dict]) -> list[str]:
    """The auto_<criterion> verdict columns this campaign's responses actually carry (one
    query), so the page never asks for columns the file already has."""
    keys = [f"auto_{c['name']}" for c in calibratable_criteria(rubric)]
    if not keys:
        return []
    found = set()
    for b, c in (
        CampaignItem.objects.filter(campaign=campaign)
        .filter(
            Q(baseline_response__metadata__has_any_keys=keys)
            | Q(candidate_response__metadata__has_any_keys=keys)
        )
        .values_list("baseline_response__metadata", "candidate_response__metadata")[:50]
    ):
        for metadata in (b, c):
            if isinstance(metadata, dict):
                found.update(key for key in keys if key in metadata)
    return [key for key in keys if key in found]


def gating_entries(cal: dict[str, dict], decision: dict) -> list[tuple[str, float | None]]:
    """(name, P(non-inferior)) of what decides, as the decision recorded it: its criteria, and
    the preference when it gates (always on the "human" basis; with a pairwise judge on the
    "calibrated" one). Reports from before the decision kept its criteria read the calibration."""
    if "criteria" not in decision:
        return [(n, cal[n]["difference"]["p_non_inferior"]) for n in gating(criteria_of(cal))]
    entries = [(n, e["p_non_inferior"]) for n, e in decision["criteria"].items()]
    judged = (cal.get("preference") or {}).get("p_non_inferior") is not None
    if decision.get("basis") == "human" or judged:
        entries.append(("the preference", decision["preference"]["p_non_inferior"]))
    return entries


def human_rows(r: dict, decision: dict) -> list[dict[str, Any]]:
    """The "human" basis, one row per gating figure: its estimate and interval from the report,
    P(non-inferior) and verdict from the decision (the same numbers as the sentence)."""
    pref = r["preference"]
    rows = [
        {
            "name": "Preference (candidate win rate)",
            "estimate": pref.get("win_rate"),
            "ci95": pref.get("win_rate_ci95"),
            "p_text": probability_text(decision["preference"]["p_non_inferior"]),
            "verdict_words": VERDICT_WORDS.get(decision["preference"]["verdict"], ""),
        }
    ]
    for name, entry in decision.get("criteria", {}).items():
        figures = r["criteria"].get(name) or {}
        rows.append(
            {
                "name": f"{name} (candidate − baseline, as scored)",
                "estimate": figures.get("mean_diff"),
                "ci95": figures.get("mean_diff_ci95"),
                "p_text": probability_text(entry["p_non_inferior"]),
                "verdict_words": VERDICT_WORDS.get(entry["verdict"], ""),
            }
        )
    return rows


def gating(cal: dict[str, dict]) -> list[str]:
    """The criteria that decide: the critical ones, or every criterion when none is critical."""
    return [name for name, entry in cal.items() if entry.get("critical")] or list(cal)


def decision_sentence(
    cal: dict[str, dict], decision: dict, *, margin: float, n_unassigned: int | None = None
) -> str:
    """The decision in one plain sentence, with the probability it rests on, printed as the
    tables print it."""
    verdict = decision.get("verdict")
    entries = gating_entries(cal, decision)
    if verdict is None or not entries:
        return "No migration decision yet: no criterion could be calibrated (see below)."
    threshold = decision["threshold"]
    criteria = criteria_of(cal)
    critical = any(criteria.get(n, {}).get("critical") for n, _ in entries) or (
        decision.get("basis") == "human" and len(entries) > 1
    )
    names = [n for n, _ in entries if n != "the preference"]
    which = ("critical criterion" if critical else "criterion") if names else ""
    if "the preference" in dict(entries):
        which = f"{which} and the preference" if which else "the preference"
    p = dict(entries)
    points = f"{100 * margin:g}-point margin"
    gate_figures = decision.get("gates") or {}
    segments = decision.get("segments") or {}
    key = decision.get("segment_key", "segment")
    if verdict == "migrate":
        lowest = min(p, key=lambda n: p[n] if p[n] is not None else 0.0)
        every = "every " if names else ""
        also = " Every operational gate is met." if gate_figures else ""
        also += f" So is every {key}." if segments else ""
        return (
            f"Migrate: {every}{which} is non-inferior with probability ≥ {threshold:g} "
            f"(lowest: {probability_text(p[lowest])} on {lowest}).{also}"
        )
    judged = {
        n: "uncertain" if v is None else calibration.criterion_verdict(v, threshold=threshold)
        for n, v in p.items()
    }
    if verdict == "do_not_migrate":
        worse = [
            f"{n} (P(non-inferior) {probability_text(p[n])})" for n in p if judged[n] == "fail"
        ]
        reasons = []
        if worse:
            reasons.append(
                f"the candidate is worse than the baseline by more than the {points} "
                f"on {_join(worse)}"
            )
        reasons += [
            f"{rule} is not met (probability {probability_text(g['probability'])})"
            for rule, g in gate_figures.items()
            if g["verdict"] == "fail"
        ]
        reasons += [
            f"{key} {value} says do not migrate"
            for value, segment in segments.items()
            if segment["verdict"] == "do_not_migrate"
        ]
        return f"Do not migrate: {_join(reasons or ['see the figures below'])}."
    undecided = [
        f"{n} at P(non-inferior) {probability_text(p[n])}"
        if p[n] is not None
        else f"{n} (no labels yet)"
        for n in p
        if judged[n] == "uncertain"
    ]
    undecided += [
        f"{rule} (probability {probability_text(g['probability'])})"
        for rule, g in gate_figures.items()
        if g["verdict"] == "uncertain"
    ]
    undecided += [
        f"{key} {value}" for value, s in segments.items() if s["verdict"] == "need_more_labels"
    ]
    more = decision.get("more_labels_needed")
    if more and n_unassigned is not None and more > n_unassigned:
        settle = (
            f"about {more} more human-labelled items should settle it, more than the "
            f"{n_unassigned} item{'s' if n_unassigned != 1 else ''} of this campaign nobody has "
            "reviewed yet: import more pairs to settle it"
        )
    elif more:
        settle = f"about {more} more human-labelled items should settle it"
    elif decision.get("basis") == "human":
        settle = "no estimate of how many more human-labelled items would settle it yet"
    else:
        settle = (
            "even many more human-labelled items may not settle it at the judge's current accuracy"
        )
    return (
        f"Need more human labels: {settle} (undecided: {_join(undecided or ['-'])}; "
        f"{threshold:g} is needed)."
    )


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def calibration_needs(rubric: list[dict], *, has_verdicts: list[str] | None = None) -> list[str]:
    """What a campaign needs before its report can calibrate a judge, in plain words; when the
    pairs file already has verdict columns (`has_verdicts`), what is missing instead."""
    if has_verdicts:
        return [
            f"The pairs file has the judge's verdicts ({', '.join(has_verdicts)}): the report "
            "calibrates them once reviewers have labelled some of the same responses. Compute "
            "(or recompute) the report after the first labels."
        ]
    needs = []
    names = [c["name"] for c in calibratable_criteria(rubric)]
    if not names:
        needs.append(
            "The rubric has no per-response criterion with a pass / fail reading: add a binary "
            'criterion, or give a scale a "pass_threshold" (e.g. 4: scores of 4 or more pass).'
        )
        names = ["<criterion>"]
    columns = ", ".join(f"auto_{name}" for name in names)
    needs.append(
        f"The pairs file needs the judge's verdicts as response metadata columns ({columns}; "
        f"in the wide form auto_{names[0]}_a and auto_{names[0]}_b), with values 1/0, true/false "
        "or pass/fail. Then recompute the report."
    )
    return needs


def human_only(counts: dict) -> dict[str, Any]:
    """Pass rate among the human-labelled items (majority human verdict), Wilson 95% interval."""
    n = counts["tp"] + counts["fn"] + counts["fp"] + counts["tn"]
    passed = counts["tp"] + counts["fn"]
    return {"n": n, "rate": passed / n if n else None, "ci95": stats.wilson_interval(passed, n)}


def criterion_rows(cal: dict[str, dict], rubric: list[dict]) -> list[dict[str, Any]]:
    """One row per calibrated criterion: each system's human-only and calibrated pass rates and
    the judge's accuracy on it, then the difference, P(non-inferior), critical flag and verdict."""
    by_name = {c["name"]: c for c in rubric}
    rows = []
    for name, entry in criteria_of(cal).items():
        criterion = by_name.get(name, {})
        systems = []
        for system in SYSTEMS:
            figures = entry[system]
            se, sp = figures["sensitivity"], figures["specificity"]
            systems.append(
                {
                    "system": system,
                    "human": human_only(figures),
                    "calibrated": figures["posterior_mean"],
                    "ci95": figures["ci95"],
                    "sensitivity": se,
                    "specificity": sp,
                    "chance": calibration.no_better_than_chance(se, sp),
                    "n_judge_only": figures["n_judge_only"],
                }
            )
        rows.append(
            {
                "name": name,
                "label": criterion.get("label", ""),
                "lower_is_better": criterion.get("direction") == "lower_is_better",
                "pass_threshold": criterion.get("pass_threshold"),
                "critical": bool(entry.get("critical")),
                "judge": entry.get("judge"),
                "systems": systems,
                "difference": entry["difference"],
                "p_text": probability_text(entry["difference"]["p_non_inferior"]),
                "verdict": entry["verdict"],
                "verdict_words": VERDICT_WORDS.get(entry["verdict"], entry["verdict"]),
            }
        )
    return rows


def operational_rows(campaign: Campaign) -> list[dict[str, Any]]:
    """Per measure (automatic metrics, then numeric response metadata such as latency, tokens and
    cost): [baseline, candidate] summaries {n, mean, median, p90} over the dataset's responses."""
    overview = dataset_overview(dataset=campaign.dataset)
    names = overview["system_names"]
    systems = (campaign.baseline.name, campaign.candidate.name)
    columns = [names.index(name) if name in names else None for name in systems]
    rows = []
    for group, source in (("metric", "metric_rows"), ("metadata", "metadata_rows")):
        for row in overview[source]:
            if group == "metadata" and row["label"].startswith("auto_"):
                continue  # the judge's verdicts: calibrated above, not an operational figure
            cells = [None if i is None else row["cells"][i] for i in columns]
            rows.append(
                {"label": row["label"], "rate": row["rate"], "group": group, "cells": cells}
            )
    return rows


# ----------------------------------------------------------------------------- the next batch


@dataclass(frozen=True)
class NextBatchPlan:
    """Which unassigned items to send to reviewers, stratified on the judge's verdict."""

    criterion: str
    system: str  # "baseline" or "candidate": whose judge verdicts the items are stratified on
    system_name: str
    campaign_items: list[int]
    judge_positive: int
    judge_negative: int


@dataclass(frozen=True)
class NextBatch:
    plan: NextBatchPlan
    result: batches.AssignResult
    reviewers: list[str]

    @property
    def message(self) -> str:
        numbers = ", ".join(str(b.number) for b in self.result.batches)
        plan = self.plan
        return (
            f"Batch {numbers}: {self.result.n_items} items chosen on {plan.criterion} (the judge "
            f"passed {plan.judge_positive} and failed {plan.judge_negative} of "
            f"{plan.system_name}'s answers), {self.result.n_assignments} assignments for "
            f"{', '.join(self.reviewers)}."
        )


def next_batch_size(decision: dict) -> int:
    """How many items the next batch asks for: the estimate, at most NEXT_BATCH_MAX."""
    return min(decision.get("more_labels_needed") or NEXT_BATCH_MAX, NEXT_BATCH_MAX)


def target_of(cal: dict[str, dict], decision: dict) -> tuple[str, str]:
    """(criterion, system) whose uncertainty most holds the decision back: the undecided gating
    criterion with the widest difference interval, and its system with the wider interval."""
    threshold = decision["threshold"]
    cal = criteria_of(cal)
    undecided = [
        name
        for name in gating(cal)
        if calibration.criterion_verdict(
            cal[name]["difference"]["p_non_inferior"], threshold=threshold
        )
        == "uncertain"
    ]
    if not undecided:
        raise ValidationError("No criterion is undecided: the report needs no more labels.")

    def width(interval: list[float]) -> float:
        return interval[1] - interval[0]

    name = max(undecided, key=lambda n: width(cal[n]["difference"]["ci95"]))
    system = max(SYSTEMS, key=lambda s: width(cal[name][s]["ci95"]))
    return name, system


def plan_next_batch(campaign: Campaign, report: Report) -> NextBatchPlan:
    """The most informative unassigned items for the report's undecided decision.

    Candidates are the campaign's items nobody has been assigned (so no human label yet) that
    carry the judge's verdict; :func:`calibration.labels_to_request` splits the batch between the
    judge's passes and fails (Neyman-like allocation), seeded by the campaign seed and the report.
    """
    cal, decision = report.result.get("calibration") or {}, report.result.get("decision") or {}
    if decision.get("verdict") != "need_more_labels":
        raise ValidationError("The decision is made: no more labels are needed.")
    name, system = target_of(cal, decision)
    verdict = KeyTextTransform(f"auto_{name}", f"{system}_response__metadata")
    read = judge_verdict
    if cal[name].get("judge") == REFUSAL_JUDGE:
        criterion = next(c for c in campaign.rubric.criteria if c["name"] == name)
        verdict = KeyTextTransform("refusal", f"{system}_response__metrics")
        read = partial(refusal_verdict, criterion=criterion)
    rows = [
        (pk, read(value))
        for pk, value in CampaignItem.objects.filter(campaign=campaign, slots_taken=0)
        .annotate(verdict=verdict)
        .order_by("pk")
        .values_list("pk", "verdict")
    ]
    rows = [(pk, v) for pk, v in rows if v is not None]
    if not rows:
        raise ValidationError(
            f"Every item with the judge's verdict on {name} already has reviewers: "
            "nothing is left to ask about."
        )
    counts = {key: cal[name][system][key] for key in calibration.COUNT_KEYS}
    pick = calibration.labels_to_request(
        [v for _, v in rows],
        next_batch_size(decision),
        posterior=calibration.theta_posterior(**counts),
        seed=(campaign.seed * 1_000_003 + report.pk) % 2**63,
    )
    return NextBatchPlan(
        criterion=name,
        system=system,
        system_name=getattr(campaign, system).name,
        campaign_items=[rows[i][0] for i in pick["indices"]],
        judge_positive=pick["judge_positive"],
        judge_negative=pick["judge_negative"],
    )


def create_next_batch(*, campaign: Campaign, report_id: int | None, actor: User) -> NextBatch:
    """Create and assign (to the campaign's roster) one batch of the most informative items for
    the decision of report ``report_id``, which must still be the latest. Once per report: a
    second call raises ValidationError(code="already_created")."""
    with transaction.atomic():
        # Serialises double submits: the second waits here, then sees the first one's record.
        Campaign.objects.select_for_update().get(pk=campaign.pk)
        report = latest_report(campaign)
        if report is None or report.pk != report_id:
            raise ValidationError(
                "The report has changed since this page was shown: check the new figures first.",
                code="stale_report",
            )
        done = next_batch_event(campaign, report)
        if done is not None:
            raise ValidationError(
                f"The next batch for this report was already created "
                f"(batch {', '.join(map(str, done.details.get('batches', [])))}).",
                code="already_created",
            )
        plan = plan_next_batch(campaign, report)
        roster = list(access.reviewers_for_lead(actor).filter(pk__in=campaign.roster.values("pk")))
        if not roster:
            raise ValidationError(
                "This campaign has no reviewers on its roster: assign a batch from the campaign "
                "page first."
            )
        result = batches.create_batches_and_assign(
            campaign=campaign,
            reviewers=roster,
            campaign_items=plan.campaign_items,
            actor=actor,
        )
        reviewers = [r.email or r.username for r in roster]
        record_audit(
            actor,
            NEXT_BATCH_VERB,
            campaign=campaign,
            target=f"report:{report.pk}",
            batches=[b.number for b in result.batches],
            criterion=plan.criterion,
            system=plan.system,
            items=result.n_items,
            judge_positive=plan.judge_positive,
            judge_negative=plan.judge_negative,
            reviewers=reviewers,
        )
    return NextBatch(plan=plan, result=result, reviewers=reviewers)
