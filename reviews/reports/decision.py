"""The report's `decision` section: one verdict for every campaign, from the evidence it has.

Pure functions (no Django). Two bases (DESIGN.md, "Report"):

- "calibrated": the campaign's pairs file carries an automated judge's verdicts (`auto_<criterion>`
  and / or `auto_preference`): each gating criterion's calibrated P(non-inferior)
  (reviews/reports/calibration.py) decides, as before, and the judge's calibrated pairwise win
  rate too when it has `auto_preference`.
- "human": no judge columns. The reviewers' own labels decide: the preference (design-aware
  P(win rate > 0.5 - margin), reviews/reports/uncertainty.py) and every critical per-response
  criterion (design-aware P(candidate - baseline > -margin) on the pass rate, or on the score as a
  share of its scale; `stats.criterion_non_inferiority`).

Each entry is "pass" at P(non-inferior) >= threshold, "fail" at <= 1 - threshold, else
"uncertain" (calibration.criterion_verdict); the campaign migrates when every gating entry passes,
does not when any fails. Deciding on the lowest of several probabilities each held to the
threshold is an intersection-union test (Berger 1982, Technometrics 24:295): its error rate is at
most the threshold's, with no multiplicity correction needed. `probability` is that lowest
P(non-inferior), the one the verdict rests on, and the figure every page shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reviews.reports import uncertainty
from reviews.reports.calibration import criterion_verdict

CAP = 1_000_000


def probability_text(p: float | None) -> str:
    """A probability as every page prints it: three decimals, never rounded to certainty (so
    the headline and the tables say the same number)."""
    if p is None:
        return "n/a"
    if p > 0.9995:
        return "> 0.999"
    if p < 0.0005:
        return "< 0.001"
    return f"{p:.3f}"


def overall(verdicts: list[str]) -> str:
    if "fail" in verdicts:
        return "do_not_migrate"
    if verdicts and all(v == "pass" for v in verdicts):
        return "migrate"
    return "need_more_labels"


def _entry(p: float | None, threshold: float) -> dict[str, Any]:
    return {
        "p_non_inferior": p,
        "verdict": "uncertain" if p is None else criterion_verdict(p, threshold=threshold),
    }


def decide(
    *,
    basis: str,
    threshold: float,
    preference: float | None,
    preference_gates: bool,
    criteria: Mapping[str, float | None],
    more_labels_needed: int | None,
) -> dict[str, Any]:
    """The decision section from P(non-inferior) of the preference and of each gating criterion
    (None where there is no evidence yet: that entry is "uncertain", never the prior's value)."""
    entries = {name: _entry(p, threshold) for name, p in criteria.items()}
    pref = _entry(preference, threshold)
    gating = list(entries.values()) + ([pref] if preference_gates else [])
    verdict = overall([e["verdict"] for e in gating])
    known = [e["p_non_inferior"] for e in gating if e["p_non_inferior"] is not None]
    probability = min(known) if known and len(known) == len(gating) else None
    return {
        "verdict": verdict,
        "threshold": threshold,
        "basis": basis,
        "probability": probability,
        "criteria": entries,
        "preference": pref,
        "more_labels_needed": more_labels_needed if verdict == "need_more_labels" else None,
    }


def preference_items_needed(
    preference: Mapping[str, Any], *, n_items: int, margin: float, threshold: float
) -> int | None:
    """Further items until the preference's P(non-inferior) reaches `threshold` or falls to
    1 - threshold, more items arriving at the current win rate and each adding the effective
    decisive judgments an item adds now (n_effective / items: the design effect carries over).
    0 when decided; None without a decisive judgment or when no number of items would do."""
    rate, counts = preference.get("win_rate"), preference.get("counts") or {}
    decisive = int(counts.get("candidate", 0)) + int(counts.get("baseline", 0))
    if rate is None or decisive == 0 or n_items <= 0:
        return None
    n_eff = decisive / (preference.get("design_effect") or 1.0)
    per_item = n_eff / n_items

    def decided(more: int) -> bool:
        p = float(uncertainty.beta_posterior(rate, n_eff + more * per_item).sf(0.5 - margin))
        return p >= threshold or p <= 1 - threshold

    return 0 if decided(0) else uncertainty.smallest(decided, CAP)


def human_decision(
    *,
    preference: Mapping[str, Any],
    criteria: Mapping[str, Mapping[str, Any]],
    threshold: float,
    margin: float,
    n_items: int,
) -> dict[str, Any]:
    """The "human" basis: `preference` is the report's preference section (design-aware
    p_non_inferior and stopping), `criteria` maps each critical criterion to
    `stats.criterion_non_inferiority`. more_labels_needed is the number of further items (each
    graded by the campaign's reviewers) the slowest undecided entry needs at current rates
    (uncertainty.items_to_decide; None when no number of items would settle it)."""
    p_pref = preference.get("p_non_inferior") if preference.get("win_rate") is not None else None
    needs: list[int | None] = []
    if p_pref is None or criterion_verdict(p_pref, threshold=threshold) == "uncertain":
        needs.append(
            preference_items_needed(preference, n_items=n_items, margin=margin, threshold=threshold)
        )
    for figures in criteria.values():
        p = figures.get("p_non_inferior")
        if p is None or figures.get("se") is None:
            needs.append(None)
            continue
        needs.append(
            uncertainty.items_to_decide(
                p_now=p,
                estimate=figures["difference"],
                se=figures["se"],
                n_items=figures["n_items"],
                margin=margin,
                threshold=threshold,
                cap=CAP,
            )
        )
    more = None if not needs or any(n is None for n in needs) else max(needs)
    return decide(
        basis="human",
        threshold=threshold,
        preference=p_pref,
        preference_gates=True,
        criteria={name: figures.get("p_non_inferior") for name, figures in criteria.items()},
        more_labels_needed=more or None,
    )
