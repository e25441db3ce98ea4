"""`siqctl disk HOST`: the size of each watched path and what grew under it; `host show` uses the same rendering."""

import time

import typer

from siqctl import context, render
from siqctl.context import fail, store_errors

# Subdirectories per path in `siqctl host show`; `siqctl disk` lists all that siqd kept.
HOST_SHOW_ROWS = 5
# A path's growth is called out as shorter than the window when its first scan in it is this late.
SHORT_BASELINE_SHARE = 0.9


@store_errors
def disk(
    name: str = typer.Argument(..., metavar="HOST", help="host name, as 'siqctl hosts' lists it"),
    path: str = typer.Option(None, "--path", help="show only this watched path, e.g. /var/log"),
    since: str = typer.Option("6h", "--since", help="how far back growth is measured, e.g. 1h, 24h, 7d"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
):
    """Show each watched path of a host: its size, and its largest subdirectories sorted by growth.

    siqd sizes the paths that the watch key of its config's disks table lists.
    Example: siqctl disk web-1 --path /var/log --since 24h
    """
    from siqd import hostview

    window = context.window_seconds(since)
    context.config()
    store = context.store(create=False)
    if store.get_host(name) is None:
        fail(f"host {name!r} has not reported to this store; list hosts with 'siqctl hosts'")
    now = time.time()
    paths = hostview.watched_paths(store, name, now, window)
    if path is not None:
        requested = _normalized(path)
        chosen = [entry for entry in paths if entry["path"] == requested]
        if not chosen:
            known = ", ".join(entry["path"] for entry in paths) or "none"
            fail(f"{requested} is not a watched path of {name} (watched: {known}); "
                 "siqd sizes the paths under [disks] watch in its config")
        paths = chosen
    if as_json:
        typer.echo(render.to_json({"host": name, "window_seconds": window, "paths": breakdown_data(paths)}))
        return
    if not paths:
        typer.echo(f"{name} reports no watched paths; list directories under [disks] watch in its siqd config, "
                   'such as watch = ["/var/log"]')
        return
    typer.echo(f"Watched paths of {name}, growth over the last {since}:")
    typer.echo("\n".join(breakdown_lines(paths, now, window)))


def _normalized(path: str) -> str:
    import posixpath

    return posixpath.normpath(path) if path.startswith("/") else path


def breakdown_data(paths: list[dict]) -> list[dict]:
    """Return watched paths from siqd.hostview.watched_paths as JSON-ready data, times in ISO 8601 UTC."""
    return [{
        "path": entry["path"],
        "bytes": entry["bytes"],
        "scanned_at": render.iso_utc(entry["scanned_at"]),
        "complete": entry["complete"],
        "growth_bytes": entry["growth_bytes"],
        "growth_since": render.iso_utc(entry["growth_since"]),
        "baseline_complete": entry["baseline_complete"],
        "subdirectories": [{
            "path": sub["path"],
            "bytes": sub["bytes"],
            "growth_bytes": sub["growth_bytes"],
            "growth_since": render.iso_utc(sub["growth_since"]),
            "at_least": sub["at_least"],
        } for sub in entry["subdirectories"]],
    } for entry in paths]


def breakdown_lines(paths: list[dict], now: float, window: float, limit: int | None = None,
                    host: str | None = None) -> list[str]:
    """Return a table of watched paths, each followed by its subdirectories, largest growth first.

    With `limit`, at most that many subdirectories are listed per path, and a
    last line names the `siqctl disk` command that lists the rest.
    """
    from siqd.metrics import format_bytes

    # Table rows are tuples of cells; a string is a line of its own below a path.
    rows: list[tuple[str, str, str, str] | str] = [("PATH", "SIZE", "GROWTH", "NOTE")]
    for entry in paths:
        rows.append((entry["path"], format_bytes(entry["bytes"]), _growth_text(entry["growth_bytes"]),
                     _path_note(entry, now, window)))
        subdirectories = entry["subdirectories"]
        listed = subdirectories if limit is None else subdirectories[:limit]
        for sub in listed:
            growth = _growth_text(sub["growth_bytes"])
            note = ""
            if sub["at_least"] and sub["growth_bytes"] is not None:
                growth += " or more"
                note = "not among the largest at the first scan"
            rows.append(("  " + sub["path"], format_bytes(sub["bytes"]), growth, note))
        if len(listed) < len(subdirectories):
            rows.append(f"  … {len(subdirectories) - len(listed)} more: siqctl disk {host} --path {entry['path']}")
    cells = [row for row in rows if isinstance(row, tuple)]
    widths = [max(len(row[column]) for row in cells) for column in range(3)]
    lines = []
    for row in rows:
        if isinstance(row, str):
            lines.append("  " + row)
        else:
            padded = [row[column].ljust(widths[column]) for column in range(3)] + [row[3]]
            lines.append(("  " + "  ".join(padded)).rstrip())
    return lines


def _growth_text(growth: float | None) -> str:
    from siqd.metrics import format_bytes

    if growth is None:
        return "-"
    sign = "+" if growth >= 0 else "-"
    return f"{sign}{format_bytes(abs(growth))}"


def _path_note(entry: dict, now: float, window: float) -> str:
    from siqd.durations import format_duration

    notes = [f"scanned {render.ago(entry['scanned_at'], now)}"]
    if not entry["complete"]:
        notes.append("partial: the scan reached watch_budget or watch_max_files, see siqd's log")
    if entry["growth_since"] is None:
        notes.append("no earlier scan to compare")
    else:
        span = entry["scanned_at"] - entry["growth_since"]
        if span < SHORT_BASELINE_SHARE * window:
            notes.append(f"growth over {format_duration(span)}")
        if entry["baseline_complete"] is False:
            notes.append("growth from a partial scan")
    return ", ".join(notes)


def register(app: typer.Typer) -> None:
    app.command("disk")(disk)
