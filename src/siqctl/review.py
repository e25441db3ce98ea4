"""`siqctl review`: four questions after an incident, asked on a terminal or given as options."""

import sys
import time

import typer

from siqctl import context
from siqctl.context import USAGE, fail, store_errors
from siqctl.incidents import ID

EDIT_WORD = "e"
CLEAR_WORD = "-"


def _ask(question: str, current: str) -> str | None:
    """Ask one question; return the new answer, or None to keep the current one."""
    from siqd.incidents import REVIEW_PROMPTS

    typer.echo(REVIEW_PROMPTS[question])
    if current:
        typer.echo("  now: " + current.replace("\n", "\n       "))
        hint = f"Enter keeps it, '{CLEAR_WORD}' clears it, '{EDIT_WORD}' opens $EDITOR"
    else:
        hint = f"Enter leaves it blank, '{EDIT_WORD}' opens $EDITOR"
    answer = typer.prompt(f"  answer ({hint})", default="", show_default=False, prompt_suffix=": ")
    if answer == "":
        return None
    if answer.strip() == CLEAR_WORD:
        return ""
    if answer.strip() == EDIT_WORD:
        return _edit(current)
    return answer


def _edit(text: str) -> str:
    """Open $VISUAL or $EDITOR (default vi) on `text` and return what was saved."""
    import os
    import shlex
    import subprocess
    import tempfile

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile("w+", suffix=".txt", encoding="utf-8", delete=False) as handle:
        handle.write(text + "\n" if text else "")
        path = handle.name
    try:
        try:
            status = subprocess.call([*shlex.split(editor), path])
        except OSError as error:
            fail(f"cannot start the editor {editor!r}: {error.strerror}; set $EDITOR or type the answer")
        if status != 0:
            fail(f"the editor {editor!r} exited with status {status}; the review was not saved")
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    finally:
        os.unlink(path)


@store_errors
def review(
    incident_id: int = ID,
    trigger: str = typer.Option(None, "--trigger", help="what triggered it"),
    cause: str = typer.Option(None, "--cause", help="the root cause"),
    fix: str = typer.Option(None, "--fix", help="what fixed it"),
    sooner: str = typer.Option(None, "--sooner", help="could it have been detected sooner, and how"),
    by: str = typer.Option(None, "--by", help="who writes the review (default: your OS user name)"),
    as_json: bool = typer.Option(False, "--json", help="print the review as JSON"),
):
    """Write or edit an incident's review: trigger, root cause, fix, and whether to detect it sooner.

    On a terminal it prompts for the four answers; with any of the options it
    sets just those answers. Example: siqctl review 57 --cause "debug logging left on"
    """
    from siqd.incidents import REVIEW_QUESTIONS, Incidents

    store = context.store()
    incident = store.get_incident(incident_id)
    answers = {"trigger": trigger, "cause": cause, "fix": fix, "sooner": sooner}
    if as_json and all(value is None for value in answers.values()):
        from siqctl.render import review_data, to_json

        current = store.get_review(incident_id)
        if current is None:
            fail(f"incident {incident_id} has no review yet; write one with: siqctl review {incident_id}")
        typer.echo(to_json(review_data(current)))
        return
    if all(value is None for value in answers.values()):
        if not sys.stdin.isatty():
            fail("no answers given and no terminal to ask on; use --trigger, --cause, --fix or --sooner", USAGE)
        current = store.get_review(incident_id) or {}
        typer.echo(f"Review of incident #{incident.id}: {incident.title}")
        if incident.resolution:
            typer.echo(f"Resolution note: {incident.resolution}")
        for question in REVIEW_QUESTIONS:
            answers[question] = _ask(question, current.get(question, ""))
    outcome = Incidents(store, context.config()).review(incident_id, answers, context.actor(by), time.time())
    saved = store.get_review(incident_id)
    if as_json:
        from siqctl.render import review_data, to_json

        typer.echo(to_json(review_data(saved)))
        return
    typer.echo(f"Saved the review of incident #{outcome.incident.id}.")


def register(app: typer.Typer) -> None:
    app.command("review")(review)
