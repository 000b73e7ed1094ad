"""A project with rep's tasks (docs/RULES.md, "Tasks"): the example rules plus a call step for
interested buyers, a social step, and `call.connected` proving the `evaluating` stage."""

from __future__ import annotations

from pathlib import Path

# appended to the `interested` playbook, after its last step (text, not a YAML round trip: `on:` keys)
STEPS = """
    - id: intro-call
      after: 1d
      interaction: routine
      channel: call
      content: interested/intro-call
    - id: connect
      after: 1d
      interaction: nurture
      channel: social
      content: interested/connect
"""
LAST = "      content: interested/webinar-reminder\n"


def add_task_steps(root: Path) -> Path:
    """Add the task steps to the project at `root` (before an Engine opens it)."""
    path = root / "rules" / "nurture.yaml"
    text = path.read_text()
    assert text.count(LAST) == 1 and text.count("      - meeting.accepted\n") == 1
    text = text.replace(LAST, LAST + STEPS.lstrip("\n")).replace(
        "      - meeting.accepted\n", "      - meeting.accepted\n      - call.connected\n")
    path.write_text(text)
    (root / "content" / "interested" / "intro-call.call.j2").write_text(
        "Ask {{ contact.first_name }} which monthly report their team dreads most.\n")
    (root / "content" / "interested" / "connect.social.j2").write_text(
        "Hi {{ contact.first_name }}, good to meet you here.\n")
    return root
