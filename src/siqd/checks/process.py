"""Process checks: processes whose name or command line matches a pattern are running, and how many."""

import os
import re

import psutil

from siqd.checks import CRITICAL, OK, Result
from siqd.records import Record


class ProcessOptions(Record):
    process: re.Pattern | None  # searched in the process name (what ps -e shows)
    cmdline: re.Pattern | None  # searched in the arguments joined with spaces
    min: int = 1
    max: int | None = None

    def describe(self) -> str:
        parts = []
        if self.process is not None:
            parts.append(f"process {self.process.pattern!r}")
        if self.cmdline is not None:
            parts.append(f"cmdline {self.cmdline.pattern!r}")
        return " and ".join(parts)


def read_options(table) -> ProcessOptions:
    patterns = {}
    for key in ("process", "cmdline"):
        text = table.string(key)
        if text is None:
            patterns[key] = None
            continue
        if text == "":
            raise table.error(key, "must not be empty")
        try:
            patterns[key] = re.compile(text)
        except re.error as error:
            raise table.error(key, f"invalid regular expression {text!r}: {error}") from None
    if patterns["process"] is None and patterns["cmdline"] is None:
        raise table.error("process", "missing; set process (a regex on the process name) or cmdline "
                                     "(a regex on the command line), or both")
    minimum = table.get("min", int, "a whole number", 1)
    if minimum < 0:
        raise table.error("min", f"must be 0 or more, got {minimum}")
    maximum = table.get("max", int, "a whole number", None)
    if maximum is not None and maximum < minimum:
        raise table.error("max", f"must be at least min ({minimum}), got {maximum}")
    return ProcessOptions(process=patterns["process"], cmdline=patterns["cmdline"], min=minimum, max=maximum)


def settings(options: ProcessOptions) -> dict:
    entry = {"min": options.min}
    if options.process is not None:
        entry["process"] = options.process.pattern
    if options.cmdline is not None:
        entry["cmdline"] = options.cmdline.pattern
    if options.max is not None:
        entry["max"] = options.max
    return entry


def count_matching(options: ProcessOptions) -> int:
    """Count running processes (not zombies, not siqd itself) that match every pattern set."""
    own = os.getpid()
    count = 0
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        info = process.info
        if process.pid == own or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if options.process is not None and not options.process.search(info["name"] or ""):
            continue
        if options.cmdline is not None and not options.cmdline.search(" ".join(info["cmdline"] or [])):
            continue
        count += 1
    return count


def judge(options: ProcessOptions, count: int) -> Result:
    patterns = options.describe()
    verb = "process matches" if count == 1 else "processes match"
    measures = [("check.process_count", {}, float(count), "")]
    if count == 0 and options.min > 0:
        return Result(CRITICAL, f"no process matches {patterns}", measures=measures)
    if count < options.min:
        return Result(CRITICAL, f"{count} {verb} {patterns}, fewer than min {options.min}", measures=measures)
    if options.max is not None and count > options.max:
        return Result(CRITICAL, f"{count} {verb} {patterns}, more than max {options.max}", measures=measures)
    return Result(OK, f"{count} {verb} {patterns}", measures=measures)


def run(check) -> Result:
    return judge(check.options, count_matching(check.options))
