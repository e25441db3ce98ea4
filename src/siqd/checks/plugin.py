"""Nagios-compatible plugin checks: run a program without a shell and read its exit code and output.

Exit codes 0, 1, 2 and 3 are ok, warning, critical and unknown. The first
output line up to "|" is the reason. Performance data after "|" (on the
first line, and after the first "|" of the long output that follows) becomes
`check.perf` series, one per label:

    DISK OK - free space: / 80167MiB (77% inode=97%);| /=24881659904B;216442024755;243497277849;0;270552530944
"""

import os
import re
import shutil
import signal
import subprocess
import threading
import time

from siqd.checks import CRITICAL, UNKNOWN, Result, format_timeout
from siqd.records import Record

COMMAND_FORM = 'a list of strings such as ["/usr/lib/nagios/plugins/check_tcp", "-H", "127.0.0.1", "-p", "22"]'
# After the timeout the plugin's process group gets SIGTERM, then SIGKILL this much later.
TERM_GRACE = 1.0
# How long to wait for the pipes to close once the group was killed.
KILL_WAIT = 2.0
MAX_REASON_LENGTH = 500
# One performance data item: a label, "=" and the value fields up to the next whitespace.
# A label with spaces is in single quotes, and '' stands for a quote inside it.
PERF_ITEM = re.compile(r"\s*(?:'((?:[^']|'')+)'|([^\s'=]+))=(\S*)")
PERF_VALUE = re.compile(r"([-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?)([^\d\s;.,+-][^\s;]*)?")


# Plugin processes still running, so that stopping siqd can end them with their process groups.
_running: set[subprocess.Popen] = set()
_running_lock = threading.Lock()


class CommandOptions(Record):
    command: list[str]  # the program, resolved to an absolute path when the config was read, and its arguments


class PerfValue(Record):
    label: str
    value: float
    unit: str = ""
    warn: str = ""  # thresholds and bounds as the plugin printed them (Nagios range syntax)
    crit: str = ""
    min: float | None = None
    max: float | None = None


# --- config -------------------------------------------------------------------------------


def read_options(table) -> CommandOptions:
    raw = table.get("command", (list, str), COMMAND_FORM, None)
    if raw is None:
        raise table.error("command", f"missing; expected {COMMAND_FORM}")
    if isinstance(raw, str):
        raise table.error("command", f"expected {COMMAND_FORM}; siq runs no shell, so give the program and "
                                     "each argument as its own string")
    if not raw:
        raise table.error("command", f"must not be empty; expected {COMMAND_FORM}")
    for item in raw:
        if not isinstance(item, str):
            raise table.error("command", f"expected {COMMAND_FORM}, found {item!r}")
    try:
        program = resolve_program(raw[0])
    except ValueError as error:
        raise table.error("command", str(error)) from None
    return CommandOptions(command=[program, *raw[1:]])


def resolve_program(program: str) -> str:
    """Return the absolute path of an executable program: a path as given, or a name looked up on PATH."""
    if program == "":
        raise ValueError("the program name is empty")
    if "/" not in program:
        found = shutil.which(program)
        if found is None:
            raise ValueError(f"{program!r} not found on PATH ({os.environ.get('PATH', '')}); give its absolute "
                             "path, e.g. /usr/lib/nagios/plugins/check_tcp")
        return os.path.abspath(found)
    if not os.path.isabs(program):
        raise ValueError(f"expected an absolute path or a program name found on PATH, got {program!r}")
    if not os.path.exists(program):
        raise ValueError(f"{program} not found; install it (the Nagios plugins are in Debian's "
                         "monitoring-plugins package) or fix the path")
    if os.path.isdir(program):
        raise ValueError(f"{program} is a folder; expected an executable file")
    if not os.access(program, os.X_OK):
        raise ValueError(f"{program} is not executable; run: chmod +x {program}")
    return program


def settings(options: CommandOptions) -> dict:
    return {"command": list(options.command)}


# --- output -------------------------------------------------------------------------------


def parse_output(stdout: str) -> tuple[str, list[PerfValue]]:
    """Split plugin output into its summary (the first line's text) and its performance data."""
    lines = stdout.splitlines()
    if not lines:
        return "", []
    summary, _, perf = lines[0].partition("|")
    long_output = "\n".join(lines[1:])
    if "|" in long_output:
        perf += " " + long_output.partition("|")[2].replace("\n", " ")
    return summary.strip(), parse_perfdata(perf)


def parse_perfdata(text: str) -> list[PerfValue]:
    """Parse space-separated `'label'=value[UOM];warn;crit;min;max` items, skipping malformed ones.

    A value of "U" (the plugin could not measure it) is skipped too. The
    first item of a label wins. Commas in labels become "_", because a
    series key separates labels with commas.
    """
    found: dict[str, PerfValue] = {}
    position = 0
    while position < len(text):
        match = PERF_ITEM.match(text, position)
        if match is None:
            skipped = re.compile(r"\s*\S+").match(text, position)
            if skipped is None:
                break
            position = skipped.end()
            continue
        position = match.end()
        label = match.group(1).replace("''", "'") if match.group(1) is not None else match.group(2)
        label = label.strip().replace(",", "_")
        value = parse_perf_value(label, match.group(3))
        if value is not None and label and label not in found:
            found[label] = value
    return list(found.values())


def parse_perf_value(label: str, fields_text: str) -> PerfValue | None:
    fields = fields_text.split(";")
    match = PERF_VALUE.fullmatch(fields[0])
    if match is None:
        return None
    extra = fields[1:] + [""] * (4 - len(fields[1:]))
    return PerfValue(label=label, value=_number(match.group(1)), unit=match.group(2) or "", warn=extra[0],
                     crit=extra[1], min=_optional_number(extra[2]), max=_optional_number(extra[3]))


def _number(text: str) -> float:
    return float(text.replace(",", "."))


def _optional_number(text: str) -> float | None:
    try:
        return _number(text) if text else None
    except ValueError:
        return None


# --- running ------------------------------------------------------------------------------


def run_argv(argv: list[str], timeout: float) -> tuple[int | None, str, str]:
    """Run `argv` without a shell in a session of its own; return (exit code, stdout, stderr).

    The exit code is None when the program did not finish within `timeout`:
    its whole process group then gets SIGTERM and, TERM_GRACE later, SIGKILL.
    A negative exit code is the signal that ended it. Raises OSError when it
    cannot be started.
    """
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True, encoding="utf-8", errors="replace")
    with _running_lock:
        _running.add(process)
    try:
        return _wait(process, timeout)
    finally:
        with _running_lock:
            _running.discard(process)


def _wait(process: subprocess.Popen, timeout: float) -> tuple[int | None, str, str]:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        return process.returncode, stdout, stderr
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.communicate(timeout=TERM_GRACE)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            try:
                process.communicate(timeout=KILL_WAIT)
            except subprocess.TimeoutExpired:
                # A descendant that left the group keeps the pipes open, so stop reading them.
                process.kill()
                process.stdout.close()
                process.stderr.close()
                process.wait()
        return None, "", ""


def _signal_group(group: int, number: int) -> None:
    try:
        os.killpg(group, number)
    except ProcessLookupError:
        pass


def end_running() -> int:
    """Send SIGKILL to the process group of every plugin still running; return how many there were."""
    with _running_lock:
        running = list(_running)
    for process in running:
        _signal_group(process.pid, signal.SIGKILL)
    return len(running)


def shorten(text: str) -> str:
    return text if len(text) <= MAX_REASON_LENGTH else text[:MAX_REASON_LENGTH - 1] + "…"


def judge(program: str, returncode: int, stdout: str, stderr: str) -> Result:
    """Map an exit code and output to a result; codes outside 0-3 and signals are unknown."""
    summary, perf = parse_output(stdout)
    measures = [("check.perf", {"label": item.label}, item.value, item.unit) for item in perf]
    error_line = next((line.strip() for line in stderr.splitlines() if line.strip()), "")
    name = os.path.basename(program)
    if returncode in (0, 1, 2, 3):
        reason = summary or error_line or f"{name} exited with code {returncode} and printed nothing"
        return Result(returncode, shorten(reason), measures=measures)
    if returncode < 0:
        try:
            signal_name = signal.Signals(-returncode).name
        except ValueError:
            signal_name = str(-returncode)
        reason = f"{name} was ended by signal {signal_name}"
    else:
        reason = f"{name} exited with code {returncode}, which is not a plugin status (0-3)"
    detail = summary or error_line
    return Result(UNKNOWN, shorten(f"{reason}: {detail}" if detail else reason), measures=measures)


def run(check) -> Result:
    argv = check.options.command
    started = time.monotonic()
    try:
        returncode, stdout, stderr = run_argv(argv, check.timeout)
    except OSError as error:
        return Result(UNKNOWN, f"cannot run {argv[0]}: {error.strerror or error}", time.monotonic() - started)
    elapsed = time.monotonic() - started
    if returncode is None:
        return Result(CRITICAL, f"{os.path.basename(argv[0])} did not finish within {format_timeout(check.timeout)} "
                                "and was stopped", elapsed)
    result = judge(argv[0], returncode, stdout, stderr)
    result.duration = elapsed
    return result
