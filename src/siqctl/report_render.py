"""Render the patterns report as text, Markdown or a self-contained HTML page."""

from html import escape

from siqd.durations import format_duration

BAR_WIDTH = 30
# Per-host and per-rule lists show the largest this many; the rest are counted in one line.
TOP_ROWS = 15


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def _bar(count: int, largest: int) -> str:
    if not largest:
        return ""
    return "#" * max(1, round(count / largest * BAR_WIDTH)) if count else ""


def summary_lines(report: dict) -> list[str]:
    """Return the headline figures, used by every format and by --notify."""
    totals = report["totals"]
    resolve = report["time_to_resolve"]
    lines = [
        f"{totals['opened']} incident{'' if totals['opened'] == 1 else 's'} opened: {totals['resolved']} resolved, "
        f"{totals['ignored']} ignored, "
        f"{totals['still_open']} still open.",
        f"Time to resolve: median {_duration(resolve['median_seconds'])}, "
        f"90th percentile {_duration(resolve['p90_seconds'])} ({resolve['count']} resolved).",
    ]
    if report["by_host"]:
        top_count = report["by_host"][0]["incidents"]
        leaders = [row["host"] for row in report["by_host"] if row["incidents"] == top_count]
        if len(leaders) == 1:
            lines.append(f"Most incidents: host {leaders[0]} ({top_count}).")
        elif len(leaders) < len(report["by_host"]):
            named = ", ".join(leaders[:3]) + (f" and {len(leaders) - 3} more" if len(leaders) > 3 else "")
            lines.append(f"Most incidents: hosts {named} ({top_count} each).")
    if report["recurring"]:
        lines.append(f"{len(report['recurring'])} series had incidents more than once; the most: "
                     f"{_series_name(report['recurring'][0])} ({report['recurring'][0]['count']} times).")
    if report["noisy_rules"]:
        lines.append("Mostly ignored rules: " + ", ".join(rule["rule"] for rule in report["noisy_rules"]) + ".")
    if report["unreviewed"]:
        count = len(report["unreviewed"])
        lines.append(f"{count} resolved incident{' has' if count == 1 else 's have'} no review.")
    if report["heartbeat_failures"]:
        lines.append(_heartbeat_summary(report["heartbeat_failures"]))
    return lines


# -- cron heartbeats ------------------------------------------------------------------------

# Every format lists at most this many heartbeat problems, the newest; JSON has them all.
HEARTBEAT_ROWS = 30


def _heartbeat_summary(failures: list[dict]) -> str:
    counts = {kind: sum(1 for entry in failures if entry["kind"] == kind) for kind in ("failed", "late", "stuck")}
    runs = f"{counts['failed']} failed run{'' if counts['failed'] == 1 else 's'}"
    return f"Cron heartbeats: {runs}, {counts['late']} late, {counts['stuck']} stuck."


def _heartbeat_rows(report: dict) -> tuple[list[tuple[str, ...]], str]:
    """Return (when, host, heartbeat, problem, exit, reason) rows of the newest problems, and a line counting the
    older ones ("" when all are shown)."""
    from siqd.heartbeats import exit_text

    failures = report["heartbeat_failures"]
    newest = failures[-HEARTBEAT_ROWS:]
    rows = [(entry["at_local"], entry["host"], entry["name"], entry["kind"], exit_text(entry["exit_code"]) or "-",
             entry["reason"] or "-") for entry in newest]
    older = len(failures) - len(newest)
    return rows, (f"{older} older problems are in the JSON report (--format json)" if older else "")


def _top(rows: list[tuple[str, int]], noun: str) -> tuple[list[tuple[str, int]], str]:
    """Split rows into the first TOP_ROWS and a line that counts the rest ("" when there is none)."""
    if len(rows) <= TOP_ROWS:
        return rows, ""
    rest = rows[TOP_ROWS:]
    return rows[:TOP_ROWS], f"{len(rest)} more {noun} with {sum(count for _, count in rest)} incidents"


def _series_name(entry: dict) -> str:
    series = f" {entry['series']}" if entry["series"] and not entry["series"].startswith("title=") else ""
    return f"{entry['host']} {entry['rule']}{series}"


def _title(report: dict) -> str:
    period = report["period"]
    so_far = ", so far" if period["so_far"] else ""
    return f"siq report {period['label']} ({period['start_local']} to {period['end_local']}{so_far})"


# -- text --------------------------------------------------------------------------------


def render_text(report: dict) -> str:
    lines = [_title(report), ""] + summary_lines(report)

    def section(heading: str, rows: list[tuple[str, int]], rest: str = "") -> None:
        lines.extend(["", heading])
        if not rows:
            lines.append("  none")
            return
        largest = max(count for _, count in rows)
        width = max(len(name) for name, _ in rows)
        for name, count in rows:
            lines.append(f"  {name:<{width}}  {count:>4}  {_bar(count, largest)}")
        if rest:
            lines.append(f"  ({rest})")

    section("Incidents per host:", *_top([(row["host"], row["incidents"]) for row in report["by_host"]], "hosts"))
    section("Incidents per rule:", *_top([(row["rule"], row["incidents"]) for row in report["by_rule"]], "rules"))
    section("Incidents per day:", [(row["date"], row["incidents"]) for row in report["by_day"]])
    section("Incidents per hour of day:", [(f"{row['hour']:02d}:00", row["incidents"]) for row in report["by_hour"]])

    lines.extend(["", "Recurring series (each time's fix):"])
    if not report["recurring"]:
        lines.append("  none")
    for entry in report["recurring"]:
        lines.append(f"  {_series_name(entry)}: {entry['count']} times")
        for item in entry["incidents"]:
            note = item["resolution"] or f"({item['status']})"
            lines.append(f"    #{item['id']} {item['opened_at']}: {note}")

    cleared = report["cleared_to_resolved"]
    lines.extend([
        "",
        "Time from condition cleared to resolved: "
        f"median {_duration(cleared['median_seconds'])}, 90th percentile {_duration(cleared['p90_seconds'])} "
        f"({cleared['count']} incidents).",
    ])

    lines.extend(["", "Mostly ignored rules (noise):"])
    if not report["noisy_rules"]:
        lines.append("  none")
    for rule in report["noisy_rules"]:
        lines.append(f"  {rule['rule']}: {rule['ignored']} of {rule['incidents']} ignored; {rule['suggestion']}")

    lines.extend(["", "Resolved without a review:"])
    if not report["unreviewed"]:
        lines.append("  none")
    for item in report["unreviewed"]:
        lines.append(f"  #{item['id']} {item['title']} (siqctl review {item['id']})")

    lines.extend(["", "Cron heartbeat problems (failed runs, late and stuck jobs):"])
    rows, rest = _heartbeat_rows(report)
    if not rows:
        lines.append("  none")
    for when, host, name, problem, exit_code, reason in rows:
        details = ", ".join(part for part in (exit_code, reason) if part and part != "-")
        lines.append(f"  {when}  {host} {name}: {problem}" + (f", {details}" if details else ""))
    if rest:
        lines.append(f"  ({rest})")
    return "\n".join(lines)


# -- Markdown ------------------------------------------------------------------------------


def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict) -> str:
    lines = [f"# {_title(report)}", ""] + [f"- {line}" for line in summary_lines(report)]

    def table(heading: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        lines.extend(["", f"## {heading}", ""])
        if not rows:
            lines.append("None.")
            return
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "---|" * len(columns))
        for row in rows:
            lines.append("| " + " | ".join(_md_cell(cell) for cell in row) + " |")

    table("Incidents per host", ("host", "incidents"), [(r["host"], r["incidents"]) for r in report["by_host"]])
    table("Incidents per rule", ("rule", "incidents"), [(r["rule"], r["incidents"]) for r in report["by_rule"]])
    table("Busiest hours", ("hour", "incidents"),
          [(f"{r['hour']:02d}:00", r["incidents"]) for r in sorted(report["by_hour"], key=lambda r: -r["incidents"])
           if r["incidents"]][:5])
    table("Recurring series", ("series", "times", "fixes"),
          [(_series_name(e), e["count"], "; ".join(f"#{i['id']}: {i['resolution'] or i['status']}"
                                                   for i in e["incidents"])) for e in report["recurring"]])
    cleared = report["cleared_to_resolved"]
    lines.extend(["", "## Time from condition cleared to resolved", "",
                  f"Median {_duration(cleared['median_seconds'])}, 90th percentile "
                  f"{_duration(cleared['p90_seconds'])} ({cleared['count']} incidents)."])
    table("Mostly ignored rules", ("rule", "ignored", "suggestion"),
          [(r["rule"], f"{r['ignored']} of {r['incidents']}", r["suggestion"]) for r in report["noisy_rules"]])
    table("Resolved without a review", ("incident", "title"),
          [(f"#{i['id']}", i["title"]) for i in report["unreviewed"]])
    rows, rest = _heartbeat_rows(report)
    table("Cron heartbeat problems", ("when", "host", "heartbeat", "problem", "exit", "reason"), rows)
    if rest:
        lines.extend(["", f"{rest[0].upper()}{rest[1:]}."])
    return "\n".join(lines) + "\n"


# -- HTML ------------------------------------------------------------------------------------

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1d232b; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.1rem; margin-top: 2rem; border-bottom: 1px solid #d5dae0; }
.period { color: #5b6572; } ul.summary li { margin: .2rem 0; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #eceff3; vertical-align: top; }
th { font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
svg { max-width: 100%; height: auto; } svg text { font: 11px system-ui, sans-serif; fill: #1d232b; } .grid { display: grid; grid-template-columns: 1fr 1fr; gap: 2rem; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } section { break-inside: avoid; } }
@media (max-width: 40rem) { .grid { grid-template-columns: 1fr; } }
"""


def bar_chart_svg(rows: list[tuple[str, int]], label: str) -> str:
    """Return an inline SVG horizontal bar chart of (name, count) rows."""
    if not rows:
        return "<p>None.</p>"
    bar_height, gap, name_width, width = 18, 6, 150, 420
    largest = max(count for _, count in rows) or 1
    height = len(rows) * (bar_height + gap)
    parts = [f'<svg role="img" aria-label="{escape(label)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    for index, (name, count) in enumerate(rows):
        y = index * (bar_height + gap)
        length = (width - name_width - 40) * count / largest
        parts.append(f'<text x="{name_width - 6}" y="{y + 13}" text-anchor="end">{escape(_clip(name, 24))}</text>')
        parts.append(f'<rect x="{name_width}" y="{y}" width="{length:.1f}" height="{bar_height}" fill="#3b6ea8"/>')
        parts.append(f'<text x="{name_width + length + 4:.1f}" y="{y + 13}">{count}</text>')
    parts.append("</svg>")
    return "".join(parts)


def column_chart_svg(rows: list[tuple[str, int]], label: str, every: int = 1) -> str:
    """Return an inline SVG column chart; every `every`-th name is written under its column."""
    if not rows:
        return "<p>None.</p>"
    width, height, bottom, margin = 760, 170, 24, 20
    # At least 4 so that a single incident is a short column, not a full-height one.
    largest = max(max(count for _, count in rows), 4)
    step = (width - 2 * margin) / len(rows)
    parts = [f'<svg role="img" aria-label="{escape(label)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    for index, (name, count) in enumerate(rows):
        column = (height - bottom - 14) * count / largest
        x = margin + index * step
        parts.append(f'<rect x="{x + 1:.1f}" y="{height - bottom - column:.1f}" width="{max(step - 2, 1):.1f}" '
                     f'height="{column:.1f}" fill="#3b6ea8"><title>{escape(name)}: {count}</title></rect>')
        if count and step >= 14:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{height - bottom - column - 3:.1f}" '
                         f'text-anchor="middle">{count}</text>')
        if index % every == 0:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{height - 8}" text-anchor="middle">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _chart_with_rest(rows: list[tuple[str, int]], rest: str, label: str) -> str:
    chart = bar_chart_svg(rows, label)
    return chart + (f'<p class="period">{escape(rest)}</p>' if rest else "")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_html(report: dict) -> str:
    period = report["period"]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{escape(_title(report))}</title><style>{_CSS}</style></head><body>",
           f"<h1>siq report {escape(period['label'])}</h1>",
           f'<p class="period">{escape(period["start_local"])} to {escape(period["end_local"])}'
           f'{", so far" if period["so_far"] else ""}; days and hours in {escape(period["timezone"])} time; '
           f'generated {escape(report["generated_local"])}</p>',
           '<ul class="summary">' + "".join(f"<li>{escape(line)}</li>" for line in summary_lines(report)) + "</ul>"]

    out.append('<div class="grid"><section><h2>Incidents per host</h2>')
    out.append(_chart_with_rest(*_top([(r["host"], r["incidents"]) for r in report["by_host"]], "hosts"),
                                "incidents per host"))
    out.append("</section><section><h2>Incidents per rule</h2>")
    out.append(_chart_with_rest(*_top([(r["rule"], r["incidents"]) for r in report["by_rule"]], "rules"),
                                "incidents per rule"))
    out.append("</section></div>")
    days = report["by_day"]
    out.append("<section><h2>Incidents per day</h2>")
    out.append(column_chart_svg([(d["date"][5:], d["incidents"]) for d in days], "incidents per day",
                                every=max(1, len(days) // 10)))
    out.append("</section><section><h2>Incidents per hour of day</h2>")
    out.append(column_chart_svg([(f"{r['hour']:02d}", r["incidents"]) for r in report["by_hour"]],
                                "incidents per hour of day", every=3))
    out.append("</section>")

    out.append("<section><h2>Recurring series</h2>")
    if report["recurring"]:
        out.append("<table><tr><th>series</th><th>times</th><th>each time's fix</th></tr>")
        for entry in report["recurring"]:
            fixes = "<br>".join(f"#{item['id']} {escape(item['opened_at'][:10])}: "
                                f"{escape(item['resolution'] or item['status'])}" for item in entry["incidents"])
            out.append(f"<tr><td>{escape(_series_name(entry))}</td><td class=num>{entry['count']}</td>"
                       f"<td>{fixes}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>None.</p>")
    resolve, cleared = report["time_to_resolve"], report["cleared_to_resolved"]
    out.append("</section><section><h2>Time to resolve</h2><table>"
               "<tr><th></th><th>median</th><th>90th percentile</th><th>incidents</th></tr>"
               f"<tr><td>opened to resolved</td><td>{_duration(resolve['median_seconds'])}</td>"
               f"<td>{_duration(resolve['p90_seconds'])}</td><td class=num>{resolve['count']}</td></tr>"
               f"<tr><td>condition cleared to resolved</td><td>{_duration(cleared['median_seconds'])}</td>"
               f"<td>{_duration(cleared['p90_seconds'])}</td><td class=num>{cleared['count']}</td></tr>"
               "</table></section>")
    out.append("<section><h2>Mostly ignored rules</h2>")
    if report["noisy_rules"]:
        out.append("<table><tr><th>rule</th><th>ignored</th><th>suggestion</th></tr>")
        for rule in report["noisy_rules"]:
            out.append(f"<tr><td>{escape(rule['rule'])}</td><td>{rule['ignored']} of {rule['incidents']}</td>"
                       f"<td>{escape(rule['suggestion'])}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>None.</p>")
    out.append("</section><section><h2>Resolved without a review</h2>")
    if report["unreviewed"]:
        out.append("<table><tr><th>incident</th><th>title</th><th>resolved</th></tr>")
        for item in report["unreviewed"]:
            out.append(f"<tr><td>#{item['id']}</td><td>{escape(item['title'])}</td>"
                       f"<td>{escape(item['closed_at'] or '')}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>None.</p>")
    out.append("</section><section><h2>Cron heartbeat problems</h2>")
    rows, rest = _heartbeat_rows(report)
    if rows:
        out.append("<table><tr><th>when</th><th>host</th><th>heartbeat</th><th>problem</th><th>exit</th>"
                   "<th>reason</th></tr>")
        for row in rows:
            out.append("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>")
        out.append("</table>")
        if rest:
            out.append(f'<p class="period">{escape(rest)}</p>')
    else:
        out.append("<p>None.</p>")
    out.append("</section></body></html>")
    return "\n".join(out) + "\n"
