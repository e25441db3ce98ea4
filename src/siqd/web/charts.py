"""Inline SVG line charts: each bucket's mean as a line over its min–max band.

Charts are drawn on the server, so a page needs no script and no network
access to show them. They scale with their viewBox, so one chart fits a
phone and a desktop column alike.
"""

import math
from datetime import datetime
from html import escape

from siqd.durations import format_duration
from siqd.metrics import format_bytes

WIDTH, HEIGHT = 440, 170  # viewBox units; a chart about this many pixels wide shows 11 px text
LEFT, RIGHT, TOP, BOTTOM = 58, 10, 12, 24
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
LINE_COLOR = "#2f6db5"
THRESHOLD_COLOR = "#c0392b"
MARKER_COLOR = "#5b6572"


def axis_value(value: float, unit: str) -> str:
    """Format a tick value compactly: "25%", "1.5 GB/s", "2m", "0.5"."""
    if unit == "%":
        return f"{value:g}%"
    if unit in ("B", "B/s"):
        return format_bytes(value).replace(".0 ", " ") + unit[1:]
    if unit == "s":
        return format_duration(value)
    return f"{value:g}{unit}"


def nice_ticks(low: float, high: float, count: int = 4, min_step: float = 0.0) -> list[float]:
    """Return about `count` + 1 evenly spaced round tick values that cover [low, high].

    `min_step` keeps ticks apart for values that have a smallest unit, such as whole bytes.
    """
    if high <= low:
        high = low + 1.0
    raw_step = max((high - low) / count, min_step)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(factor * magnitude for factor in (1, 2, 2.5, 5, 10) if factor * magnitude >= raw_step)
    first = math.floor(low / step) * step
    last = math.ceil(high / step) * step
    ticks = []
    tick = first
    while tick <= last + step / 2:
        ticks.append(round(tick, 10))
        tick += step
    return ticks


def time_label(ts: float, span: float) -> str:
    """Format a time on the x axis in local time: the hour for a day or less, else the date too."""
    moment = datetime.fromtimestamp(ts).astimezone()
    return moment.strftime("%H:%M") if span <= 36 * 3600 else moment.strftime("%m-%d %H:%M")


def _segments(buckets: list, max_buckets_apart: int) -> list[list[int]]:
    """Split the indexes of filled buckets into runs; filled buckets further apart than the limit start a new run."""
    runs: list[list[int]] = []
    for index, bucket in enumerate(buckets):
        if bucket is None:
            continue
        if runs and index - runs[-1][-1] <= max_buckets_apart:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


def series_chart(buckets: list, start: float, step: float, unit: str, label: str,
                 threshold: float | None = None, threshold_label: str = "",
                 markers: tuple[tuple[float, str], ...] = (), interval: float = 0.0,
                 width: int = WIDTH) -> str:
    """Return an SVG chart of (low, mean, high) buckets, or None entries for buckets without samples.

    Bucket i covers [start + i*step, start + (i+1)*step). The line breaks
    where no sample came for more than 2.5 times `interval` (the host's
    sampling interval), so buckets narrower than the interval do not break
    it. The y axis starts at zero for non-negative data and includes the
    threshold. `markers` are (time, text) pairs drawn as vertical lines, such
    as when an incident opened.
    """
    filled = [bucket for bucket in buckets if bucket is not None]
    if not filled:
        return f'<p class="muted">No samples of {escape(label)} in this window.</p>'
    span = step * len(buckets)
    low = min(min(bucket[0] for bucket in filled), 0.0)
    high = max(bucket[2] for bucket in filled)
    if threshold is not None:
        low, high = min(low, threshold), max(high, threshold)
    ticks = nice_ticks(low, high, min_step=1.0 if unit in ("B", "B/s") else 0.0)
    bottom_value, top_value = ticks[0], ticks[-1]
    plot_width = width - LEFT - RIGHT

    def x_at(ts: float) -> float:
        return LEFT + (ts - start) / span * plot_width

    def y_at(value: float) -> float:
        return TOP + (top_value - value) / (top_value - bottom_value) * PLOT_HEIGHT

    def center(index: int) -> float:
        return x_at(start + (index + 0.5) * step)

    parts = [f'<svg class="chart" viewBox="0 0 {width} {HEIGHT}" role="img" aria-label="{escape(label)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>']
    for tick in ticks:
        y = y_at(tick)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{width - RIGHT}" y2="{y:.1f}" stroke="#e3e7ec"/>')
        parts.append(f'<text x="{LEFT - 5}" y="{y + 4:.1f}" text-anchor="end">{escape(axis_value(tick, unit))}</text>')
    for fraction, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        x = LEFT + fraction * plot_width
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">'
                     f'{escape(time_label(start + fraction * span, span))}</text>')

    bands, lines = [], []
    for run in _segments(buckets, max(1, int(2.5 * interval / step))):
        if len(run) == 1:  # a lone bucket: a path of one point would be invisible
            index = run[0]
            lowest, mean, highest = buckets[index]
            parts.append(f'<line x1="{center(index):.1f}" y1="{y_at(lowest):.1f}" x2="{center(index):.1f}" '
                         f'y2="{y_at(highest):.1f}" stroke="{LINE_COLOR}" stroke-opacity=".35" stroke-width="4"/>')
            parts.append(f'<circle cx="{center(index):.1f}" cy="{y_at(mean):.1f}" r="2.5" fill="{LINE_COLOR}"/>')
            continue
        upper = [f"{center(index):.1f},{y_at(buckets[index][2]):.1f}" for index in run]
        lower = [f"{center(index):.1f},{y_at(buckets[index][0]):.1f}" for index in reversed(run)]
        bands.append(f'<polygon class="band" points="{" ".join(upper + lower)}" fill="{LINE_COLOR}" '
                     'fill-opacity=".18"/>')
        lines.append("M" + " L".join(f"{center(index):.1f},{y_at(buckets[index][1]):.1f}" for index in run))
    parts.extend(bands)
    if lines:
        parts.append(f'<path class="mean" d="{" ".join(lines)}" fill="none" stroke="{LINE_COLOR}" '
                     'stroke-width="1.8" stroke-linejoin="round"/>')

    if threshold is not None:
        y = y_at(threshold)
        parts.append(f'<line class="threshold" x1="{LEFT}" y1="{y:.1f}" x2="{width - RIGHT}" y2="{y:.1f}" '
                     f'stroke="{THRESHOLD_COLOR}" stroke-dasharray="5 3"/>')
        if threshold_label:
            label_y = y - 4 if y - 4 > TOP + 8 else y + 12
            parts.append(f'<text x="{width - RIGHT - 2}" y="{label_y:.1f}" text-anchor="end" '
                         f'fill="{THRESHOLD_COLOR}">{escape(threshold_label)}</text>')
    for ts, text in markers:
        if not start <= ts <= start + span:
            continue
        x = x_at(ts)
        anchor = "start" if x < LEFT + plot_width * 0.7 else "end"
        offset = 3 if anchor == "start" else -3
        parts.append(f'<line class="marker" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + PLOT_HEIGHT}" '
                     f'stroke="{MARKER_COLOR}" stroke-dasharray="2 3"/>')
        parts.append(f'<text x="{x + offset:.1f}" y="{TOP + 9}" text-anchor="{anchor}" '
                     f'fill="{MARKER_COLOR}">{escape(text)}</text>')
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_width}" height="{PLOT_HEIGHT}" fill="none" '
                 'stroke="#c9d0d8"/></svg>')
    return "".join(parts)
