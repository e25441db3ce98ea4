"""The screen of `siqctl top`: gathering the hosts, laying out the lines and drawing them with curses."""

import curses
import locale
import os
import sys
import threading
import time
import unicodedata
from dataclasses import dataclass

from siqctl import render
from siqctl.context import USAGE, fail

MIN_WIDTH = 20
MIN_HEIGHT = 5
# How long getch waits for a key before the screen is checked for new data (milliseconds).
KEY_POLL_MS = 200
# How long quitting waits for a store read in progress before leaving it to the exiting process.
STOP_WAIT_SECONDS = 1.0
QUIT_KEYS = (ord("q"), ord("Q"))
REFRESH_KEYS = (ord("r"), ord("R"))
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
GAP = "  "

# Segment styles, which Palette maps to curses attributes.
PLAIN, HEADING, BAD, WARN = "plain", "heading", "bad", "warn"


def check_terminal_type() -> None:
    """Exit with a usage error unless $TERM names a terminfo entry that can move the cursor.

    Without the check, ncurses' initscr() prints its own message and ends the process
    on an unknown type, and draws garbage on one without cursor addressing (TERM=dumb).
    """
    term = os.environ.get("TERM")
    if not term:
        fail("TERM is not set; set it to your terminal's type, e.g. TERM=xterm-256color", USAGE)
    try:
        curses.setupterm(term, sys.stdout.fileno())
    except curses.error:
        fail(f"the terminal type TERM={term!r} is unknown to curses; set TERM to your terminal's type, "
             "e.g. TERM=xterm-256color", USAGE)
    if curses.tigetstr("cup") is None:
        fail(f"the terminal type TERM={term!r} cannot move the cursor, which siqctl top needs; "
             "use a full-screen terminal (e.g. TERM=xterm-256color) or 'siqctl hosts'", USAGE)


def exit_on_sigterm(signum, frame) -> None:
    # Leave through the `finally` blocks, so the terminal is restored as on q.
    raise SystemExit(128 + signum)


# -- reading the store ----------------------------------------------------------------


@dataclass
class HostRow:
    name: str
    state: str
    last_seen: float
    open_incidents: int
    values: dict


@dataclass
class Snapshot:
    """One reading of the store: hosts with problems first, open incidents with the most severe first."""

    taken_at: float
    hosts: list[HostRow]
    incidents: list


def gather(store, configured_stale_after: float | None, default_interval: float) -> Snapshot:
    """Read the hosts, their newest values and the open incidents. A store failure raises StoreError."""
    from siqd import hostview

    now = time.time()
    incidents = store.list_incidents(statuses=["open"])
    rows = []
    for host in store.list_hosts():
        limit = hostview.stale_after(host, configured_stale_after, default_interval)
        values = hostview.now_values(hostview.current_samples(store, host))
        rows.append(HostRow(host["name"], hostview.host_state(host, now, limit), host["last_seen"],
                            host["open_incidents"], values))
    rows.sort(key=lambda row: (row.state != "silent", row.open_incidents == 0, row.name))
    incidents.sort(key=lambda incident: (SEVERITY_RANK.get(incident.severity, len(SEVERITY_RANK)),
                                         -incident.opened_at, incident.id))
    return Snapshot(now, rows, incidents)


@dataclass
class RefreshState:
    snapshot: Snapshot | None = None
    error: str | None = None
    generation: int = 0


class Refresher:
    """Read the store every `period` seconds in a background thread, or at once after refresh_now().

    After a StoreError the previous snapshot stays, with the error beside it
    until a reading succeeds. Any other exception ends the thread, and
    raise_failure() raises it in the main thread.
    """

    def __init__(self, store, configured_stale_after: float | None, default_interval: float, period: float):
        self.store = store
        self.configured_stale_after = configured_stale_after
        self.default_interval = default_interval
        self.period = period
        self._lock = threading.Lock()
        self._state = RefreshState()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._failure: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="siqctl-top-refresh", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def refresh_now(self) -> None:
        self._wake.set()

    def state(self) -> RefreshState:
        with self._lock:
            return RefreshState(self._state.snapshot, self._state.error, self._state.generation)

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(STOP_WAIT_SECONDS)

    def _run(self) -> None:
        from siqd.store import StoreError

        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                snapshot = gather(self.store, self.configured_stale_after, self.default_interval)
            except StoreError as error:
                with self._lock:
                    self._state.error = str(error)
                    self._state.generation += 1
            except Exception as error:  # a bug: hand it to the main thread, which restores the terminal
                self._failure = error
                return
            else:
                with self._lock:
                    self._state.snapshot = snapshot
                    self._state.error = None
                    self._state.generation += 1
            self._wake.wait(max(self.period - (time.monotonic() - started), 0.0))
            self._wake.clear()


# -- laying out the screen -------------------------------------------------------------


@dataclass
class ScreenSettings:
    store_kind: str
    interval_text: str
    colour: bool
    encoding: str = "utf-8"


# A line on the screen is a list of (text, style) segments.
Line = list


@dataclass
class Column:
    header: str
    # Narrow terminals hide the column with the lowest rank first; None keeps the column.
    drop_rank: int | None = None
    max_width: int = 30
    # A shrinking column gives up width, down to min_width, before any column is hidden.
    min_width: int | None = None
    # Cut this column only when the table is too wide with every other column hidden or shrunk.
    cut_last: bool = False
    right: bool = False


HOST_COLUMNS = [
    Column("HOST", cut_last=True),
    Column("STATE"),
    Column("LAST SEEN", drop_rank=2),
    Column("OPEN", drop_rank=6, right=True),
    Column("CPU", drop_rank=5, right=True),
    Column("MEM", drop_rank=4, right=True),
    Column("LOAD/CORE", drop_rank=1, right=True),
    Column("WORST DISK", drop_rank=3, min_width=12),
]

INCIDENT_COLUMNS = [
    Column("ID", right=True),
    Column("SEVERITY"),
    Column("HOST", max_width=20),
    Column("WHAT", max_width=60, min_width=12),
    Column("OPENED", drop_rank=1),
]


def screen_lines(state: RefreshState, settings: ScreenSettings, width: int, height: int, now: float) -> list[Line]:
    """Lay out the whole screen for a terminal of `width` x `height` cells; no line is wider than `width`."""
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return [[(too_small_message(width, height), PLAIN)]]
    snapshot = state.snapshot
    lines = [header_line(snapshot, settings, width, now)]
    if height >= 12:
        lines.append([])
    body_height = height - len(lines) - 1
    if snapshot is None:
        body: list[Line] = []
    else:
        body = body_lines(snapshot, settings, width, body_height, now)
    lines += body
    lines += [[] for _ in range(height - 1 - len(lines))]
    lines.append(status_line(state, settings, width))
    return lines


def too_small_message(width: int, height: int) -> str:
    """Return the longest form of "terminal too small" that fits in `width` cells."""
    forms = [f"terminal too small ({width}x{height}); enlarge it to at least {MIN_WIDTH}x{MIN_HEIGHT}",
             f"terminal too small ({width}x{height})", "terminal too small", "too small"]
    return next((form for form in forms if len(form) <= width), forms[-1][:max(width, 0)])


def header_line(snapshot: Snapshot | None, settings: ScreenSettings, width: int, now: float) -> Line:
    """Return the counts on the left and the clock and "q quits" on the right, in the longest form that fits."""
    clock = time.strftime("%H:%M:%S", time.localtime(now))
    variants = header_variants(snapshot, settings.store_kind)
    for left in variants:
        for right in (f"{clock}  q quits", "q quits"):
            used = sum(text_width(text) for text, _ in left)
            if used + len(GAP) + len(right) <= width:
                return left + [(" " * (width - used - len(right)), PLAIN), (right, PLAIN)]
    left = cut_segments(variants[-1], width - len(GAP) - len("q quits"), settings.encoding)
    used = sum(text_width(text) for text, _ in left)
    return left + [(" " * (width - used - len("q quits")), PLAIN), ("q quits", PLAIN)]


def header_variants(snapshot: Snapshot | None, store_kind: str) -> list[Line]:
    """Return the left part of the header, longest form first."""
    if snapshot is None:
        return [[("siq top", HEADING), (f": {store_kind}", PLAIN)], [("siq top", HEADING)]]
    count = len(snapshot.hosts)
    silent = sum(1 for host in snapshot.hosts if host.state == "silent")
    opened = len(snapshot.incidents)
    hosts = f"{count} host{'s' if count != 1 else ''}"
    silent_segment = (f"{silent} silent", BAD if silent else PLAIN)
    incidents_segment = (f"{opened} open incident{'s' if opened != 1 else ''}",
                         severity_style(worst_severity(snapshot.incidents)) if opened else PLAIN)
    full = [(f"{hosts} ({count - silent} up, ", PLAIN), silent_segment, ("), ", PLAIN), incidents_segment]
    return [
        [("siq top", HEADING), (f": {store_kind}, ", PLAIN)] + full,
        full,
        [(f"{hosts}, ", PLAIN), silent_segment, (", ", PLAIN), incidents_segment],
        [(f"{hosts}, ", PLAIN), silent_segment],
        [(hosts, PLAIN)],
    ]


def body_lines(snapshot: Snapshot, settings: ScreenSettings, width: int, height: int, now: float) -> list[Line]:
    """Return the host table and, below it, as many open incidents as fit in `height` lines."""
    encoding = settings.encoding
    if snapshot.hosts:
        worst = {}
        for incident in snapshot.incidents:
            if SEVERITY_RANK.get(incident.severity, 9) < SEVERITY_RANK.get(worst.get(incident.host), 9):
                worst[incident.host] = incident.severity
        hosts = table_lines(HOST_COLUMNS, [host_cells(host, worst.get(host.name), now)
                                           for host in snapshot.hosts], width, encoding)
        hidden_name = "host"
    else:
        hosts = [[(fit("No host has reported yet; start 'siqd run' on each host.", width, encoding), PLAIN)]]
        hidden_name = ""
    if snapshot.incidents:
        incidents = table_lines(INCIDENT_COLUMNS, [incident_cells(incident, now) for incident in snapshot.incidents],
                                width, encoding)
    else:
        incidents = [[(fit("No open incidents.", width, encoding), PLAIN)]]

    # A blank line separates the incidents from the hosts when there is room for all of them.
    if len(hosts) + 1 + len(incidents) <= height:
        return hosts + [[]] + incidents
    # Hosts come first. Incidents keep their column headers, three rows and the "… more" line,
    # unless that would leave less than four lines of hosts.
    incident_share = min(len(incidents), 5)
    if height - incident_share < min(len(hosts), 4):
        incident_share = 0
    host_space = min(len(hosts), height - incident_share)
    incident_space = height - host_space
    shown = limit_lines(hosts, host_space, 1, hidden_name, width, encoding)
    if len(incidents) <= incident_space:
        shown += incidents
    elif incident_space >= 3:
        shown += limit_lines(incidents, incident_space, 1, "open incident", width, encoding)
    elif incident_space >= 1 and snapshot.incidents:
        count = len(snapshot.incidents)
        note = f"{count} open incident{'s' if count != 1 else ''} not shown (terminal too short)"
        shown.append([(fit(note, width, encoding), PLAIN)])
    return shown


def limit_lines(lines: list[Line], space: int, fixed: int, noun: str, width: int, encoding: str) -> list[Line]:
    """Keep the first `space` lines. When some are left out, the last line states how many rows are missing.

    `fixed` is the number of leading lines that are not rows (the column headers); they are always kept.
    """
    if len(lines) <= space:
        return lines
    kept = max(space - 1, fixed)
    missing = len(lines) - kept
    text = f"… and {missing} more {noun}{'s' if missing != 1 else ''}" if noun else f"… and {missing} more"
    return lines[:kept] + [[(fit(text, width, encoding), PLAIN)]]


def host_cells(host: HostRow, worst_severity_open: str | None, now: float) -> list[tuple[str, str]]:
    from siqd.metrics import format_value

    values = host.values
    disk = values["worst_disk"]
    return [
        (host.name, PLAIN),
        (host.state, BAD if host.state == "silent" else PLAIN),
        (render.ago(host.last_seen, now), PLAIN),
        (str(host.open_incidents), severity_style(worst_severity_open) if host.open_incidents else PLAIN),
        (format_value(values["cpu_percent"], "%"), PLAIN),
        (format_value(values["memory_used_percent"], "%"), PLAIN),
        (format_value(values["load_per_core_1m"], ""), PLAIN),
        (f"{format_value(disk['used_percent'], '%')} {disk['mount']}" if disk else "-", PLAIN),
    ]


def incident_cells(incident, now: float) -> list[tuple[str, str]]:
    return [
        (str(incident.id), PLAIN),
        (incident.severity, severity_style(incident.severity)),
        (incident.host, PLAIN),
        (render.shorten(render.summary_text(incident), 60), PLAIN),
        (render.ago(incident.opened_at, now), PLAIN),
    ]


def status_line(state: RefreshState, settings: ScreenSettings, width: int) -> Line:
    snapshot = state.snapshot
    if state.error is not None:
        encoding = settings.encoding
        message = clean(state.error, encoding)
        retrying = f"; retrying every {settings.interval_text}"
        tails = [retrying, ""]
        if snapshot is not None:
            taken_at = time.strftime("%H:%M:%S", time.localtime(snapshot.taken_at))
            tails.insert(0, f"{retrying}, showing data from {taken_at}")
        for tail in tails:
            room = width - len("error: ") - text_width(tail)
            if room >= min(30, text_width(message)):
                return [(fit(f"error: {cut_middle(message, room, encoding)}{tail}", width, encoding), BAD)]
        return [(fit(f"error: {message}", width, encoding), BAD)]
    if snapshot is None:
        return [(fit("reading the store…", width, settings.encoding), PLAIN)]
    updated = time.strftime("%H:%M:%S", time.localtime(snapshot.taken_at))
    forms = [f"updated {updated}, every {settings.interval_text}; r refreshes now", f"updated {updated}"]
    text = next((form for form in forms if text_width(form) <= width), forms[-1])
    return [(fit(text, width, settings.encoding), PLAIN)]


def worst_severity(incidents: list) -> str | None:
    return min((incident.severity for incident in incidents),
               key=lambda severity: SEVERITY_RANK.get(severity, len(SEVERITY_RANK)), default=None)


def severity_style(severity: str | None) -> str:
    return {"critical": BAD, "warning": WARN}.get(severity, PLAIN)


def table_lines(columns: list[Column], rows: list[list[tuple[str, str]]], width: int, encoding: str) -> list[Line]:
    """Lay out a header line and one line per row, hiding and shrinking columns until the table fits `width`."""
    natural = []
    for index, column in enumerate(columns):
        widest = max([text_width(clean(row[index][0], encoding)) for row in rows] + [len(column.header)])
        natural.append(min(widest, column.max_width))

    def least(index: int) -> int:
        minimum = columns[index].min_width
        return natural[index] if minimum is None else min(natural[index], minimum)

    def total(indexes: list[int], width_of) -> int:
        return sum(width_of(index) for index in indexes) + len(GAP) * (len(indexes) - 1)

    kept = list(range(len(columns)))
    dropped = []
    while total(kept, least) > width:
        droppable = [index for index in kept if columns[index].drop_rank is not None]
        if not droppable:
            break
        victim = min(droppable, key=lambda index: columns[index].drop_rank)
        kept.remove(victim)
        dropped.append(victim)
    # A wide column hidden early may have made room for a narrower one hidden before it.
    for index in reversed(dropped):
        if total(sorted(kept + [index]), least) <= width:
            kept = sorted(kept + [index])
    widths = {index: natural[index] for index in kept}
    excess = total(kept, natural.__getitem__) - width
    for index in reversed(kept):
        if excess <= 0:
            break
        if columns[index].min_width is not None:
            give = min(excess, widths[index] - least(index))
            widths[index] -= give
            excess -= give
    for index in kept:
        if excess > 0 and columns[index].cut_last:
            give = min(excess, widths[index] - 4)
            widths[index] -= give
            excess -= give

    def line(cells: list[tuple[str, str]]) -> Line:
        segments: Line = []
        for position, index in enumerate(kept):
            if position:
                segments.append((GAP, PLAIN))
            text, style = cells[index]
            segments.append((fit(text, widths[index], encoding, right=columns[index].right), style))
        return cut_segments(segments, width, encoding)

    header = [(column.header, HEADING) for column in columns]
    return [line(header)] + [line(row) for row in rows]


# -- text in terminal cells ------------------------------------------------------------


def char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def text_width(text: str) -> int:
    return sum(char_width(char) for char in text)


def clean(text: str, encoding: str) -> str:
    """Replace control and format characters, and those the terminal's encoding lacks, with '?'.

    A host name or incident title could otherwise move the cursor or send escape sequences.
    """
    out = []
    for char in text.replace("\n", " ").replace("\t", " "):
        if unicodedata.category(char) in ("Cc", "Cf"):
            out.append("?")
            continue
        try:
            char.encode(encoding)
        except UnicodeEncodeError:
            out.append("?")
            continue
        out.append(char)
    return "".join(out)


def fit(text: str, width: int, encoding: str, right: bool = False) -> str:
    """Return `text` cut (ending in an ellipsis) or padded to exactly `width` cells."""
    text = clean(text, encoding)
    if text_width(text) > width:
        text = cut(text, max(width - 1, 0)) + ellipsis(encoding) if width > 0 else ""
    padding = " " * (width - text_width(text))
    return padding + text if right else text + padding


def cut(text: str, width: int) -> str:
    """Return the longest start of `text` that takes at most `width` cells."""
    used = 0
    for position, char in enumerate(text):
        used += char_width(char)
        if used > width:
            return text[:position]
    return text


def cut_middle(text: str, width: int, encoding: str) -> str:
    """Cut `text` to `width` cells by replacing its middle with "…", because an error message ends with its cause."""
    if text_width(text) <= width:
        return text
    tail_width = (width - 1) * 2 // 3
    head = cut(text, width - 1 - tail_width)
    tail = text[len(text) - len(cut(text[::-1], tail_width)):]
    return head + ellipsis(encoding) + tail


def ellipsis(encoding: str) -> str:
    return "…" if clean("…", encoding) == "…" else "~"


def cut_segments(segments: Line, width: int, encoding: str) -> Line:
    """Cut a line of segments to at most `width` cells."""
    out: Line = []
    left = width
    for text, style in segments:
        text = clean(text, encoding)
        if left <= 0:
            break
        piece = cut(text, left)
        out.append((piece, style))
        left -= text_width(piece)
    return out


# -- the terminal ----------------------------------------------------------------------


class Palette:
    """curses attributes for each segment style.

    With colour, critical incidents and silent hosts are red and warnings yellow. Without it
    (NO_COLOR, or a terminal that has none), critical and silent are bold and warnings plain.
    """

    def __init__(self, colour: bool):
        self.attributes = {PLAIN: curses.A_NORMAL, HEADING: curses.A_BOLD, BAD: curses.A_BOLD, WARN: curses.A_NORMAL}
        if not (colour and curses.has_colors()):
            return
        curses.start_color()
        background = -1
        try:
            curses.use_default_colors()
        except curses.error:  # the terminal cannot keep its own background
            background = curses.COLOR_BLACK
        curses.init_pair(1, curses.COLOR_RED, background)
        curses.init_pair(2, curses.COLOR_YELLOW, background)
        self.attributes[BAD] = curses.color_pair(1) | curses.A_BOLD
        self.attributes[WARN] = curses.color_pair(2)


def draw(screen, lines: list[Line], palette: Palette) -> None:
    height, width = screen.getmaxyx()
    screen.erase()
    for y, line in enumerate(lines[:height]):
        x = 0
        for text, style in line:
            piece = cut(text, width - x)
            if not piece:
                continue
            try:
                screen.addstr(y, x, piece, palette.attributes[style])
            except curses.error:
                # curses raises this after drawing the bottom-right cell, because it cannot move the cursor past it.
                pass
            x += text_width(piece)
    screen.noutrefresh()
    curses.doupdate()


def run_screen(refresher: Refresher, settings: ScreenSettings) -> None:
    """Take over the terminal until q; restore it however this returns."""
    locale.setlocale(locale.LC_ALL, "")
    screen = curses.initscr()
    try:
        curses.noecho()
        curses.cbreak()
        screen.keypad(True)
        try:
            curses.curs_set(0)
        except curses.error:  # the terminal cannot hide its cursor
            pass
        settings.encoding = screen.encoding
        screen_loop(screen, refresher, settings, Palette(settings.colour))
    finally:
        screen.keypad(False)
        curses.nocbreak()
        curses.echo()
        curses.endwin()


def screen_loop(screen, refresher: Refresher, settings: ScreenSettings, palette: Palette) -> None:
    screen.timeout(KEY_POLL_MS)
    refresher.start()
    drawn = None
    while True:
        refresher.raise_failure()
        now = time.time()
        height, width = screen.getmaxyx()
        state = refresher.state()
        # Redraw on new data, a new size and each new second of the clock in the header.
        key_of_screen = (state.generation, height, width, int(now))
        if key_of_screen != drawn:
            draw(screen, screen_lines(state, settings, width, height, now), palette)
            drawn = key_of_screen
        key = screen.getch()
        if key in QUIT_KEYS:
            return
        if key in REFRESH_KEYS:
            refresher.refresh_now()
        elif key == curses.KEY_RESIZE:
            drawn = None
