"""siqctl review: the four questions, asked on a terminal or given as options, and editable later."""

import os
import pty
import select
import subprocess
import time

from conftest import BIN


def resolved_incident(siq, title: str = "disk full") -> str:
    siq.siqctl("open", "--host", "db-1", "--title", title, check=True)
    incident_id = str(siq.siqctl_json("incidents", "list")[0]["id"])
    siq.siqctl("resolve", incident_id, "-m", "rotated logs", check=True)
    return incident_id


def test_review_with_options(siq):
    incident_id = resolved_incident(siq)
    result = siq.siqctl("review", incident_id, "--trigger", "deploy", "--cause", "debug logging",
                        "--fix", "log level", "--sooner", "growth rule", "--by", "ana")
    assert result.returncode == 0, result.stderr
    review = siq.siqctl_json("incidents", "show", incident_id)["review"]
    assert review["trigger"] == "deploy"
    assert review["cause"] == "debug logging"
    assert review["fix"] == "log level"
    assert review["sooner"] == "growth rule"
    assert review["author"] == "ana"


def test_review_edit_keeps_other_answers(siq):
    incident_id = resolved_incident(siq)
    siq.siqctl("review", incident_id, "--cause", "debug logging", "--by", "ana", check=True)
    siq.siqctl("review", incident_id, "--fix", "log level", "--by", "ben", check=True)
    review = siq.siqctl_json("incidents", "show", incident_id)["review"]
    assert review["cause"] == "debug logging"
    assert review["fix"] == "log level"
    assert review["author"] == "ana"
    assert review["updated_by"] == "ben"
    events = [event["text"] for event in siq.siqctl_json("incidents", "show", incident_id)["events"]
              if event["kind"] == "review"]
    assert events == ["review written", "review edited: fix"]


def test_review_shown_in_show(siq):
    incident_id = resolved_incident(siq)
    siq.siqctl("review", incident_id, "--cause", "debug logging", check=True)
    shown = siq.siqctl("incidents", "show", incident_id).stdout
    assert "Root cause:    debug logging" in shown


def test_unreviewed_lists_resolved_only(siq):
    reviewed = resolved_incident(siq, "one")
    unreviewed = resolved_incident(siq, "two")
    siq.siqctl("open", "--host", "db-1", "--title", "still open", check=True)
    siq.siqctl("review", reviewed, "--fix", "x", check=True)
    listed = [str(incident["id"]) for incident in siq.siqctl_json("incidents", "list", "--unreviewed")]
    assert listed == [unreviewed]


def test_empty_review_is_error(siq):
    incident_id = resolved_incident(siq)
    result = siq.siqctl("review", incident_id, "--cause", "  ")
    assert result.returncode == 1
    assert "review of incident" in result.stderr


def test_review_without_terminal_exits_2(siq):
    incident_id = resolved_incident(siq)
    result = siq.siqctl("review", incident_id, input="")
    assert result.returncode == 2
    assert "no terminal" in result.stderr


def test_review_unknown_incident_exits_1(siq):
    result = siq.siqctl("review", "999", "--fix", "x")
    assert result.returncode == 1
    assert "incident 999 not found" in result.stderr


def run_on_terminal(siq, args: list[str], answers: list[str], env_extra: dict) -> tuple[int, str]:
    """Run siqctl on a pseudo-terminal, typing each answer after the next prompt appears."""
    main, secondary = pty.openpty()
    env = dict(siq.env(), **env_extra)
    process = subprocess.Popen([str(BIN / "siqctl"), *args], stdin=secondary, stdout=secondary, stderr=secondary,
                               env=env, close_fds=True)
    os.close(secondary)
    output = b""
    pending = list(answers)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if pending and output.count(b"answer (") > len(answers) - len(pending):
                os.write(main, pending.pop(0).encode() + b"\r")
        elif process.poll() is not None:
            break
    process.wait(10)
    os.close(main)
    return process.returncode, output.decode(errors="replace")


def test_review_interactive_with_editor(siq, tmp_path):
    incident_id = resolved_incident(siq)
    siq.siqctl("review", incident_id, "--sooner", "keep me", check=True)
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "a longer account\\nover two lines\\n" > "$1"\n')
    editor.chmod(0o755)
    code, output = run_on_terminal(siq, ["review", incident_id, "--by", "ana"],
                                   ["a deploy", "e", "log level", ""], {"EDITOR": str(editor)})
    assert code == 0, output
    review = siq.siqctl_json("incidents", "show", incident_id)["review"]
    assert review["trigger"] == "a deploy"
    assert review["cause"] == "a longer account\nover two lines"
    assert review["fix"] == "log level"
    assert review["sooner"] == "keep me"
