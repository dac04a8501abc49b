"""Server-side SVG geometry for the dataset page (the CSP allows no inline styles or scripts, so
no chart library in the browser): a box plot per measure, one row per system."""

import math

WIDTH, LEFT, RIGHT, ROW = 720, 200, 40, 34
PLOT = WIDTH - LEFT - RIGHT
KEYS = ("p10", "p25", "median", "p75", "p90")


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values spanning [lo, hi]: steps of 1, 2 or 5 times a power of ten."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / (count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(lo / step) * step
    ticks, value = [], start
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 10))
    return ticks


def box_plot(*, title: str, unit: str, by_system: dict[str, dict | None]) -> dict | None:
    """Geometry of a box plot: whiskers p10–p90, box p25–p75, a line at the median. None when
    no system has those quantiles (stats computed before they were kept)."""
    rows = [
        (name, s) for name, s in by_system.items() if s and all(s.get(k) is not None for k in KEYS)
    ]
    if not rows:
        return None
    ticks = nice_ticks(min(s["p10"] for _, s in rows), max(s["p90"] for _, s in rows))
    lo, hi = ticks[0], ticks[-1]

    def x(value: float) -> float:
        return round(LEFT + (value - lo) / ((hi - lo) or 1) * PLOT, 1)

    shapes = []
    for i, (name, s) in enumerate(rows):
        y = ROW * i + 8
        shapes.append(
            {
                "label": name,
                "y": y,
                "mid": y + ROW // 2 - 4,
                "text_y": y + ROW // 2,
                "height": ROW - 16,
                **{f"{k}_x": x(s[k]) for k in KEYS},
                "box_width": round(x(s["p75"]) - x(s["p25"]), 1),
                "summary": f"{name}: median {_fmt(s['median'])}{unit}, middle half "
                f"{_fmt(s['p25'])}–{_fmt(s['p75'])}{unit}, p10–p90 "
                f"{_fmt(s['p10'])}–{_fmt(s['p90'])}{unit}",
            }
        )
    height = ROW * len(rows) + 36
    return {
        "title": title,
        "rows": shapes,
        "width": WIDTH,
        "height": height,
        "label_x": LEFT - 10,
        "axis_y": height - 26,
        "tick_y": height - 8,
        "ticks": [{"x": x(t), "label": _fmt(t)} for t in ticks],
        "unit": unit,
    }


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
