"""Operational gates beside quality: thresholds on latency, cost, format compliance, metrics.

Pure functions (no Django). A campaign's `operational_gates` holds rules such as
`{"measure": "latency_ms", "statistic": "p90", "op": "<=", "limit": 1500}` (the candidate's p90
latency at most 1,500 ms) or `{"measure": "cost_usd", "statistic": "mean", "op": "<=", "limit":
"baseline"}` (the candidate's mean cost at most the baseline's, on the same items). The measure is
a numeric response metadata column of the pairs file (`latency_ms_a` ...) or an automatic metric;
a format-compliance column of 1/0 read with "mean >= 0.99" is a share.

Uncertainty: the items are a sample, so each figure gets a Bayesian bootstrap over items (Rubin
1981, "The Bayesian bootstrap", Ann Stat 9:130): Dirichlet(1, ..., 1) weights over the items, the
weighted statistic (mean, or weighted quantile) per draw, and for a baseline limit the candidate's
figure minus the baseline's under the same weights (paired by item). `probability` is the share
of draws meeting the rule, its 95% interval the draws' central 95%; the verdict reads it as the
quality criteria are read (pass at >= threshold, fail at <= 1 - threshold).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from reviews.reports.calibration import criterion_verdict

STATISTICS = ("mean", "median", "p50", "p90", "p95", "p99")
RULE = re.compile(
    r"^\s*(?P<statistic>mean|median|p50|p90|p95|p99)\s+(?P<measure>[A-Za-z0-9_.\-]+)\s*"
    r"(?P<op><=|>=)\s*(?P<limit>baseline|-?\d+(?:\.\d+)?)\s*$",
    re.IGNORECASE,
)
N_DRAWS = 2000


def parse_gates(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Rules, one a line ("p90 latency_ms <= 1500", "mean cost_usd <= baseline", "mean
    format_ok >= 0.99"), as gate dicts; and an error naming each line that is not one."""
    gates, errors = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = RULE.match(line)
        if match is None:
            errors.append(
                f"Line {number}: {line.strip()!r} is not a rule such as "
                "'p90 latency_ms <= 1500' or 'mean cost_usd <= baseline' (statistic: "
                f"{', '.join(STATISTICS)}; comparison <= or >=)."
            )
            continue
        limit = match["limit"].lower()
        gates.append(
            {
                "measure": match["measure"],
                "statistic": match["statistic"].lower(),
                "op": match["op"],
                "limit": "baseline" if limit == "baseline" else float(limit),
            }
        )
    return gates, errors


def gate_label(gate: Mapping[str, Any]) -> str:
    limit = gate["limit"]
    limit = limit if isinstance(limit, str) else f"{limit:g}"
    return f"{gate['statistic']} {gate['measure']} {gate['op']} {limit}"


def format_gates(gates: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join(gate_label(g) for g in gates)


def _weighted(values: np.ndarray, weights: np.ndarray, statistic: str) -> np.ndarray:
    """The statistic of `values` under each row of `weights` (draws x items)."""
    if statistic == "mean":
        return weights @ values / weights.sum(axis=1)
    q = 0.5 if statistic in ("median", "p50") else int(statistic[1:]) / 100
    order = np.argsort(values)
    cumulative = np.cumsum(weights[:, order], axis=1)
    cumulative /= cumulative[:, -1:]
    at = (cumulative < q).sum(axis=1)
    return values[order][np.minimum(at, len(values) - 1)]


def _plain(values: np.ndarray, statistic: str) -> float:
    if statistic == "mean":
        return float(values.mean())
    q = 0.5 if statistic in ("median", "p50") else int(statistic[1:]) / 100
    return float(np.quantile(values, q, method="inverted_cdf"))


def evaluate_gate(
    gate: Mapping[str, Any],
    candidate: Mapping[Any, float],
    baseline: Mapping[Any, float],
    *,
    threshold: float,
    seed: int = 0,
) -> dict[str, Any]:
    """One gate over per-item values of its measure (item -> value, each system): {label,
    estimate, ci95, probability, verdict, n}. With a baseline limit the estimate is candidate -
    baseline on the items both have. Without values the verdict is "uncertain" with n = 0."""
    statistic, versus = gate["statistic"], gate["limit"] == "baseline"
    items = [i for i in candidate if i in baseline] if versus else list(candidate)
    out: dict[str, Any] = {
        "label": gate_label(gate),
        "estimate": None,
        "ci95": None,
        "probability": None,
        "verdict": "uncertain",
        "n": len(items),
    }
    if not items:
        return out
    c = np.array([candidate[i] for i in items], dtype=float)
    weights = np.random.default_rng(seed).dirichlet(np.ones(len(items)), size=N_DRAWS)
    draws = _weighted(c, weights, statistic)
    estimate = _plain(c, statistic)
    limit = 0.0
    if versus:
        b = np.array([baseline[i] for i in items], dtype=float)
        draws = draws - _weighted(b, weights, statistic)
        estimate -= _plain(b, statistic)
    else:
        limit = float(gate["limit"])
    met = draws <= limit if gate["op"] == "<=" else draws >= limit
    probability = float(met.mean())
    out |= {
        "estimate": estimate,
        "ci95": [float(v) for v in np.quantile(draws, [0.025, 0.975])],
        "probability": probability,
        "verdict": criterion_verdict(probability, threshold=threshold),
    }
    return out


def evaluate_gates(
    gates: Sequence[Mapping[str, Any]],
    values: Mapping[str, Mapping[str, Mapping[Any, float]]],
    *,
    threshold: float,
    seed: int = 0,
    items: set | None = None,
) -> dict[str, dict[str, Any]]:
    """Every gate, keyed by its label. `values` maps a measure to {"baseline": {item: value},
    "candidate": {item: value}}; `items` restricts to a segment's items."""
    result = {}
    for gate in gates:
        by_system = values.get(gate["measure"], {})
        candidate, baseline = by_system.get("candidate", {}), by_system.get("baseline", {})
        if items is not None:
            candidate = {i: v for i, v in candidate.items() if i in items}
            baseline = {i: v for i, v in baseline.items() if i in items}
        entry = evaluate_gate(gate, candidate, baseline, threshold=threshold, seed=seed)
        result[entry.pop("label")] = entry
    return result


def strictest(verdicts: Sequence[str]) -> str:
    """The overall verdict of several: do_not_migrate over need_more_labels over migrate."""
    for verdict in ("do_not_migrate", "need_more_labels"):
        if verdict in verdicts:
            return verdict
    return "migrate" if verdicts else "need_more_labels"
