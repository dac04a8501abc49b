"""The campaign report page (leads and analysts): figures from the latest DONE Report, charts as
server-side SVG (CSP allows no inline styles or scripts), and an htmx-polled recompute status."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Count
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh, HttpResponseStopPolling

from evalsite.roles import ANALYST, LEAD, role_required
from reviews import access
from reviews.models import Campaign, Report
from reviews.reports import aggregation
from reviews.reports.decision import probability_text

PAGE = "reviews/report.html"
DECISIONS = {
    "migrate": "migrate to the candidate",
    "do_not_migrate": "do not migrate",
    "need_more_labels": "more human labels are needed",
}
RELIABLE, TENTATIVE = 0.8, 0.667  # Krippendorff (2004), Content Analysis, sec. 11.4
# Landis & Koch (1977), Biometrics 33:159: benchmarks for kappa-type coefficients (kappa, AC1).
KAPPA_BANDS = (
    (0.8, "almost perfect agreement"),
    (0.6, "substantial agreement"),
    (0.4, "moderate agreement"),
    (0.2, "fair agreement"),
    (0.0, "slight agreement"),
)
BASES = {
    "human": "the reviewers' own labels (no automated judge in the pairs file)",
    "calibrated": "the automated judge's verdicts, calibrated against the reviewers' labels",
}


@role_required(LEAD, ANALYST)
def report_page(request, slug):
    campaign = access.campaign_for_reports(request.user, slug)
    context = status_context(campaign) | report_context(campaign)
    context["shown"] = context["report"].pk if context["report"] else 0
    return render(request, PAGE, context)


@require_POST
@role_required(LEAD, ANALYST)
def recompute(request, slug):
    campaign = access.campaign_for_reports(request.user, slug)
    aggregation.request_report(campaign=campaign)
    if request.htmx:
        return status_response(request, campaign, request.POST.get("shown"))
    return redirect("report:page", slug=campaign.slug)


@role_required(LEAD, ANALYST)
def report_status(request, slug):
    """The polled status fragment; polling stops once the latest run has finished."""
    campaign = access.campaign_for_reports(request.user, slug)
    if not request.htmx:
        return redirect("report:page", slug=campaign.slug)
    return status_response(request, campaign, request.GET.get("shown"))


def status_response(request, campaign: Campaign, shown: str | None):
    """The status fragment, polling while a run is queued or running. Once a run has finished
    with figures other than the ones on the page (`shown`, a Report pk), the page reloads, so
    figures on screen are always the latest ones."""
    context = status_context(campaign) | {"shown": shown or 0}
    latest = context["latest"]
    if context["in_progress"]:
        return render(request, f"{PAGE}#report-status", context)
    done = latest is not None and latest.status == Report.Status.DONE
    if done and shown is not None and str(latest.pk) != shown:
        return HttpResponseClientRefresh()
    response = render(request, f"{PAGE}#report-status", context)
    return HttpResponseStopPolling(response.content)


# ----------------------------------------------------------------------------- context


def status_context(campaign: Campaign) -> dict[str, Any]:
    latest = campaign.reports.order_by("-created_at", "-pk").first()
    in_progress = latest is not None and latest.status in (
        Report.Status.QUEUED,
        Report.Status.RUNNING,
    )
    context = {"campaign": campaign, "latest": latest, "in_progress": in_progress}
    if latest is None:
        # Judgments queue a report every AGGREGATE_EVERY_N_JUDGMENTS (grading.count_judgments).
        every = settings.AGGREGATE_EVERY_N_JUDGMENTS
        context["every"] = every
        context["first_report_in"] = max(every - campaign.judgments_since_report, 1)
    return context


def report_context(campaign: Campaign) -> dict[str, Any]:
    report = (
        campaign.reports.filter(status=Report.Status.DONE).order_by("-finished_at", "-pk").first()
    )
    if report is None or not report.result:
        return {"report": None}
    r = report.result
    pref = r["preference"]
    rubric = {c["name"]: c for c in campaign.rubric.criteria or []}
    return {
        "report": report,
        "r": r,
        "headline": headline(pref, campaign.decision_threshold),
        "win_bar": win_rate_bar(pref),
        "criteria_plot": forest(criteria_rows(r["criteria"], rubric), -1.0, 1.0, 0.0),
        "slice_plot": forest(slice_rows(r["slices"]), 0.0, 1.0, 0.5),
        "agreement": agreement_rows(r["agreement"], list(rubric)),
        "bias": bias_reading(r["position_bias"], decisive=decisive_count(pref)),
        "calibration": calibration_rows(r.get("calibration") or {}),
        "judge_preference": (r.get("calibration") or {}).get("preference"),
        "decision": r.get("decision") or {},
        "decision_text": DECISIONS.get((r.get("decision") or {}).get("verdict"), ""),
        "decision_basis": BASES.get((r.get("decision") or {}).get("basis"), ""),
        "decision_probability": probability_text((r.get("decision") or {}).get("probability")),
        "p_better_text": probability_text(pref.get("p_candidate_better")),
        "p_non_inferior_text": probability_text(pref.get("p_non_inferior")),
        "effective": effective_judgments(pref),
        "without_flagged_text": _without_flagged(r),
    }


def effective_judgments(pref: dict) -> dict | None:
    """How many independent judgments the decisive ones are worth (shown when clustering costs
    at least 5%): decisive / design effect."""
    deff, counts = pref.get("design_effect"), pref.get("counts") or {}
    decisive = counts.get("candidate", 0) + counts.get("baseline", 0)
    if not deff or deff < 1.05 or not decisive:
        return None
    return {"decisive": decisive, "worth": round(decisive / deff), "design_effect": deff}


def _without_flagged(r: dict) -> str:
    """The decision without flagged reviewers, in words, when it differs from the decision."""
    q = r.get("quality") or {}
    verdict = (r.get("decision") or {}).get("verdict")
    if not q.get("n_flagged_reviewers") or q.get("decision_without_flagged") == verdict:
        return ""
    return DECISIONS.get(q.get("decision_without_flagged"), "no decision")


def headline(pref: dict, threshold: float) -> str:
    """The preference in words, from the design-aware P(win rate > 0.5 - margin)."""
    p, points = pref.get("p_non_inferior"), f"{100 * pref['margin']:g}-point margin"
    if p is None or pref.get("win_rate") is None:
        return "No decisive judgments yet: nothing can be said about the candidate."
    text = probability_text(p)
    if p >= threshold:
        return (
            f"The candidate is non-inferior to the baseline with probability {text} at a {points}."
        )
    if p <= 1 - threshold:
        return (
            f"The candidate is worse than the baseline by more than the {points}: it is "
            f"non-inferior with probability only {text}."
        )
    return (
        f"Not decided yet: the candidate is non-inferior to the baseline with probability "
        f"{text} at a {points} (the decision needs {threshold:g})."
    )


# ----------------------------------------------------------------------------- charts
WIDTH, LEFT, RIGHT = 720, 180, 140  # SVG geometry: label column, plot, value column
PLOT = WIDTH - LEFT - RIGHT
ROW = 26


def _x(value: float, lo: float, hi: float) -> float:
    return round(LEFT + (min(max(value, lo), hi) - lo) / (hi - lo) * PLOT, 1)


def win_rate_bar(pref: dict) -> dict | None:
    """Geometry of the win-rate bar: the rate, its Wilson 95% interval, 0.5 and 0.5 - margin."""
    rate, ci = pref.get("win_rate"), pref.get("win_rate_ci95")
    if rate is None:
        return None
    return {
        "width": WIDTH,
        "x0": LEFT,
        "plot": PLOT,
        "rate_x": _x(rate, 0, 1),
        "bar_width": round(_x(rate, 0, 1) - LEFT, 1),
        "lo_x": _x(ci[0], 0, 1) if ci else None,
        "hi_x": _x(ci[1], 0, 1) if ci else None,
        "half_x": _x(0.5, 0, 1),
        "margin_x": _x(0.5 - pref["margin"], 0, 1),
        "end_x": LEFT + PLOT,
        "label_x": LEFT + PLOT + 8,
        "rate": rate,
        "ci": ci,
    }


def forest(rows: list[dict], lo: float, hi: float, ref: float) -> dict | None:
    """Geometry of a forest plot: one row per estimate with its interval, a reference line."""
    if not rows:
        return None
    for i, row in enumerate(rows):
        row["y"] = ROW * i + ROW // 2 + 4
        row["text_y"] = row["y"] + 4
        if row["estimate"] is not None:
            row["x"] = _x(row["estimate"], lo, hi)
            ci = row.get("ci")
            row["lo_x"], row["hi_x"] = (_x(ci[0], lo, hi), _x(ci[1], lo, hi)) if ci else (None,) * 2
    height = ROW * len(rows) + 24
    return {
        "rows": rows,
        "width": WIDTH,
        "height": height,
        "ref_x": _x(ref, lo, hi),
        "axis_y": height - 14,
        "tick_y": height - 2,
        "ticks": [{"x": _x(v, lo, hi), "label": f"{v:g}"} for v in (lo, ref, hi)],
        "label_x": LEFT - 8,
        "value_x": LEFT + PLOT + 8,
    }


def criteria_rows(criteria: dict, rubric: dict) -> list[dict]:
    """Per criterion: candidate - baseline (per response) or mean minus the scale's middle (per
    pair), as a share of the scale's range so that every criterion shares one axis."""
    rows = []
    for name, figures in criteria.items():
        c = rubric.get(name, {})
        low, high = (c.get("min", 1), c.get("max", 5)) if c.get("kind") == "scale" else (0, 1)
        span = (high - low) or 1
        if "mean_diff" in figures:
            estimate, ci, label = figures["mean_diff"], figures["mean_diff_ci95"], "difference"
        else:
            middle = (low + high) / 2
            estimate = None if figures["mean"] is None else figures["mean"] - middle
            ci = figures["ci95"] and [v - middle for v in figures["ci95"]]
            label = f"mean − {middle:g}"
        rows.append(
            {
                "label": name,
                "estimate": None if estimate is None else estimate / span,
                "ci": ci and [v / span for v in ci],
                "value": "n/a" if estimate is None else f"{label} {estimate:+.2f}",
            }
        )
    return rows


def slice_rows(slices: dict) -> list[dict]:
    return [
        {
            "label": f"{key} = {value}",
            "estimate": cell["win_rate"],
            "ci": cell["win_rate_ci95"],
            "value": "n/a"
            if cell["win_rate"] is None
            else f"{cell['win_rate']:.2f} (n={cell['n_judgments']})",
            "significant": cell["p_holm"] is not None and cell["p_holm"] < 0.05,
        }
        for key, values in slices.items()
        for value, cell in values.items()
    ]


def agreement_reading(alpha: float | None) -> tuple[str, bool]:
    """Plain-language reading of Krippendorff's alpha and whether to flag it unreliable."""
    if alpha is None:
        return "undefined: too few items rated by two reviewers, or no variation", False
    if alpha >= RELIABLE:
        return "reliable", False
    if alpha >= TENTATIVE:
        return "tentative: draw only cautious conclusions", False
    return "unreliable: reviewers disagree too much to trust these scores", True


def kappa_reading(value: float | None) -> tuple[str, bool]:
    """Plain-language reading of a kappa-type coefficient (Landis & Koch 1977); flagged under
    0.4 (less than moderate agreement)."""
    if value is None:
        return "undefined: too few items rated by two reviewers, or no variation", False
    if value < 0:
        return "worse than chance: reviewers disagree more than random answers would", True
    label = next(text for floor, text in KAPPA_BANDS if value >= floor)
    return label, value < 0.4


COEFFICIENTS = (
    ("krippendorff_alpha", "Krippendorff's α", agreement_reading),
    ("fleiss_kappa", "Fleiss' κ", kappa_reading),
    ("gwet_ac1", "Gwet's AC1", kappa_reading),
)


def agreement_rows(agreement: dict, order: list[str] | None = None) -> list[dict]:
    """One row per question and coefficient: the preference gets α, κ and AC1 with their
    item-bootstrap intervals, each criterion its α; each with its plain-language reading. The
    preference first, then the rubric's order (a jsonb column keeps no key order)."""
    rank = {name: i for i, name in enumerate(["preference", *(order or [])])}
    rows = []
    for name in sorted(agreement, key=lambda n: rank.get(n, len(rank))):
        figures = agreement[name]
        for key, label, read in COEFFICIENTS:
            if key not in figures:
                continue
            reading, flagged = read(figures[key])
            rows.append(
                {
                    "name": name,
                    "coefficient": label,
                    "value": figures[key],
                    "ci": figures.get(f"{key}_ci95"),
                    "reading": reading,
                    "flagged": flagged,
                    "alpha": figures.get("krippendorff_alpha"),
                    "percent_agreement": figures.get("percent_agreement"),
                }
            )
    return rows


def decisive_count(pref: dict) -> int:
    counts = pref.get("counts") or {}
    return counts.get("candidate", 0) + counts.get("baseline", 0)


def bias_reading(bias: dict, *, decisive: int = 0) -> str:
    if not bias.get("n"):
        if decisive:
            # Imported judgments whose file named no left_system: the side is unknown.
            return (
                "Not known: the judgments were imported without the side each system was "
                "shown on (add a left_system column to check it)."
            )
        return "No decisive judgments yet."
    if bias["p_value"] is not None and bias["p_value"] < 0.05:
        return "Reviewers favour one side more than chance would explain."
    return "No sign that the side a response is shown on sways reviewers."


def calibration_rows(calibration: dict) -> list[dict]:
    """The per-criterion calibrations (the pairwise judge, `preference`, is shown apart)."""
    return [
        {"name": name, **entry, "difference": entry["difference"]}
        for name, entry in calibration.items()
        if name != "preference"
    ]


@role_required(LEAD, ANALYST)
def reports(request):
    """The analyst's landing page: campaigns with a report to read."""
    rows = access.campaigns_for_reports(request.user).annotate(n_reports=Count("reports"))
    return render(request, "reviews/reports.html", {"campaigns": rows})
