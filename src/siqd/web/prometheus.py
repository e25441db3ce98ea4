"""The /metrics page in the Prometheus text exposition format (version 0.0.4).

Each series a host still reports is one gauge with its newest value, named
`siq_` plus the siq metric with dots as underscores and labelled with the
host and the series labels. Per-host gauges give open incidents by
severity, whether the host is up and when it last reported.
"""

import re

from siqd import hostview
from siqd.config import SEVERITIES
from siqd.metrics import CATALOG
from siqd.store.base import Store, labels_of

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_INVALID_NAME = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(metric: str) -> str:
    """Return the Prometheus name of a siq metric: "disk.used_percent" becomes "siq_disk_used_percent"."""
    return "siq_" + _INVALID_NAME.sub("_", metric)


def label_name(name: str) -> str:
    cleaned = _INVALID_NAME.sub("_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"_{cleaned}"


def escape_label_value(value: str) -> str:
    """Escape a label value as the text format requires: backslash, double quote and line feed."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """Escape HELP text as the text format requires: backslash and line feed."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_number(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def sample_line(name: str, labels: dict[str, str], value: float) -> str:
    inner = ",".join(f'{label_name(key)}="{escape_label_value(str(text))}"' for key, text in labels.items())
    return f"{name}{{{inner}}} {format_number(value)}"


class Exposition:
    """Gauge families collected by name, written with one HELP and TYPE line each."""

    def __init__(self):
        self.families: dict[str, tuple[str, list[str]]] = {}

    def add(self, name: str, help_text: str, labels: dict[str, str], value: float) -> None:
        self.families.setdefault(name, (help_text, []))[1].append(sample_line(name, labels, value))

    def text(self) -> str:
        lines = []
        for name in sorted(self.families):
            help_text, samples = self.families[name]
            lines.append(f"# HELP {name} {escape_help(help_text)}")
            lines.append(f"# TYPE {name} gauge")
            lines.extend(samples)
        return "\n".join(lines) + "\n"


def metrics_text(store: Store, now: float, configured_stale_after: float | None, default_interval: float) -> str:
    """Return the exposition of every host in the store, as Prometheus scrapes it."""
    exposition = Exposition()
    hosts = store.list_hosts()
    for host in hosts:
        name = host["name"]
        limit = hostview.stale_after(host, configured_stale_after, default_interval)
        up = hostview.host_state(host, now, limit) == "up"
        exposition.add("siq_host_up", "1 while the host reports to siq, 0 once it has been silent for its "
                                      "stale_after", {"host": name}, 1.0 if up else 0.0)
        exposition.add("siq_host_last_seen_seconds", "Unix time of the host's last report",
                       {"host": name}, host["last_seen"])
        for (metric, labels), (_, value) in sorted(hostview.current_samples(store, host).items()):
            info = CATALOG.get(metric)
            help_text = info.description if info else f"siq metric {metric}"
            series_labels = {key: text for key, text in labels_of(labels).items() if key != "host"}
            exposition.add(metric_name(metric), help_text, {"host": name, **series_labels}, value)

    counts = {(host["name"], severity): 0 for host in hosts for severity in SEVERITIES}
    for incident in store.list_incidents(["open"]):
        key = (incident.host, incident.severity)
        counts[key] = counts.get(key, 0) + 1
    for (host, severity), count in sorted(counts.items()):
        exposition.add("siq_open_incidents", "open incidents by host and severity",
                       {"host": host, "severity": severity}, count)
    return exposition.text()
