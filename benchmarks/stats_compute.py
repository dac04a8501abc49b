"""Time `reviews.reports.stats.compute_report` on synthetic frames.

    python benchmarks/stats_compute.py [N_JUDGMENTS]   (default 1,000,000; overlap 3, 4 criteria)

Prints the frame sizes, the wall and CPU seconds compute_report took (CPU time is steadier on a
shared machine), and the process's peak RSS (resource.getrusage, a high-water mark) once the
frames are built and again after compute_report.
"""

import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reviews.reports.stats import compute_report

OVERLAP = 3
N_REVIEWERS = 60
RUBRIC = [
    {"name": "correctness", "kind": "scale", "min": 1, "max": 5, "per": "response"},
    {"name": "helpfulness", "kind": "scale", "min": 1, "max": 5, "per": "response"},
    {"name": "refusal_ok", "kind": "binary", "per": "response"},
    {"name": "overall", "kind": "scale", "min": 1, "max": 7, "per": "pair"},
]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_frames(n_judgments: int, seed: int = 1) -> tuple[pd.DataFrame, ...]:
    rng = np.random.default_rng(seed)
    n_items = max(1, -(-n_judgments // OVERLAP))
    item_names = np.array([f"item-{i:07d}" for i in range(n_items)], dtype=object)
    reviewer_names = np.array(
        [f"reviewer{r}@example.org" for r in range(N_REVIEWERS)], dtype=object
    )
    item = np.repeat(np.arange(n_items), OVERLAP)[:n_judgments]
    reviewer = (item * 7 + np.tile(np.arange(OVERLAP), n_items)[:n_judgments]) % N_REVIEWERS
    quality = rng.normal(0.1, 1.0, n_items)[item]  # shared per item, so reviewers agree somewhat
    draw = rng.random(n_judgments)
    p_candidate = 1 / (1 + np.exp(-quality))
    preference = np.where(
        draw < 0.15,
        2,
        np.where(draw < 0.2, 3, np.where(rng.random(n_judgments) < p_candidate, 0, 1)),
    )
    prefs = pd.DataFrame(
        {
            "item_id": item_names[item],
            "reviewer": reviewer_names[reviewer],
            "preference": np.array(["candidate", "baseline", "tie", "both_bad"], dtype=object)[
                preference
            ],
            "candidate_left": rng.random(n_judgments) < 0.5,
            "duration_seconds": rng.gamma(2.0, 30.0, n_judgments),
            "len_diff": rng.normal(50, 300, n_items)[item],
        }
    )
    parts = []
    for criterion in RUBRIC:
        targets = ["pair"] if criterion["per"] == "pair" else ["baseline", "candidate"]
        low, high = (criterion.get("min", 0), criterion.get("max", 1))
        for target in targets:
            shift = 0.3 if target == "candidate" else 0.0
            value = np.clip(
                np.rint((low + high) / 2 + quality + shift + rng.normal(0, 1, n_judgments)),
                low,
                high,
            )
            parts.append(
                pd.DataFrame(
                    {
                        "item_id": prefs["item_id"].to_numpy(),
                        "reviewer": prefs["reviewer"].to_numpy(),
                        "criterion": criterion["name"],
                        "target": target,
                        "value": value,
                    }
                )
            )
    scores = pd.concat(parts, ignore_index=True)
    meta_items = np.tile(item_names, 2)
    item_meta = pd.DataFrame(
        {
            "item_id": meta_items,
            "key": np.repeat(np.array(["category", "region"], dtype=object), n_items),
            "value": np.concatenate(
                [
                    np.array(["billing", "shipping", "returns", "account", "other"], dtype=object)[
                        rng.integers(0, 5, n_items)
                    ],
                    np.array(["eu", "us", "apac"], dtype=object)[rng.integers(0, 3, n_items)],
                ]
            ),
        }
    )
    return prefs, scores, item_meta


def main() -> None:
    n_judgments = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    prefs, scores, item_meta = synthetic_frames(n_judgments)
    before = peak_rss_mb()
    start, cpu_start = time.perf_counter(), time.process_time()
    report = compute_report(prefs, scores, item_meta, rubric=RUBRIC, margin=0.05, seed=0)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    print(f"judgments={len(prefs):,} scores={len(scores):,} item_meta={len(item_meta):,}")
    print(f"compute_report: {seconds:.2f} s wall, {cpu_seconds:.2f} s CPU")
    print(
        f"peak RSS: {before:.0f} MB with the frames built, "
        f"{peak_rss_mb():.0f} MB after compute_report"
    )
    print(
        f"win_rate={report['preference']['win_rate']:.4f} "
        f"alpha={report['agreement']['preference']['krippendorff_alpha']}"
    )


if __name__ == "__main__":
    main()
