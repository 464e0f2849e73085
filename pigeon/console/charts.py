"""Geometry for the overview's line chart, drawn as inline SVG by the template (no JavaScript).

Pure: buckets and counts in, coordinates out. The template escapes every label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 28


@dataclass(frozen=True)
class Series:
    name: str
    points: str  # "x,y x,y …" for <polyline points>
    dots: tuple[tuple[float, float, int], ...]  # (x, y, value) for markers and their titles
    total: int


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    series: tuple[Series, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    peak: int


TICKS = 4


def nice_step(peak: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50 … such that TICKS steps reach `peak`."""
    scale = 1
    while True:
        for m in (1, 2, 5):
            if scale * m * TICKS >= peak:
                return scale * m
        scale *= 10


def line_chart(
    buckets: Sequence[str], counts: Mapping[str, Sequence[int]], *, labels: Sequence[str] | None = None
) -> Chart:
    """One line per series over the buckets; `labels` are the x-axis texts (default: buckets)."""
    labels = list(labels or buckets)
    n = len(buckets)
    peak = max((v for values in counts.values() for v in values), default=0)
    step = nice_step(peak)
    ceiling = step * TICKS
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return round(LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2), 1)

    def y(v: int) -> float:
        return round(TOP + plot_h - plot_h * v / ceiling, 1)

    series = tuple(
        Series(
            name=name,
            points=" ".join(f"{x(i)},{y(v)}" for i, v in enumerate(values)),
            dots=tuple((x(i), y(v), v) for i, v in enumerate(values)),
            total=sum(values),
        )
        for name, values in counts.items()
    )
    y_ticks = tuple(Tick(y(step * k), str(step * k)) for k in range(TICKS + 1))
    every = max(1, n // 8)
    x_ticks = tuple(Tick(x(i), labels[i]) for i in range(0, n, every))
    return Chart(WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM, series, y_ticks, x_ticks, peak)
