"""The `outreach` command line: `app` and its shared options in app.py, the commands in the modules
beside it (each registers itself on import)."""

from __future__ import annotations

from outreach.cli import account_cmds, contact_cmds, experiment_cmds, ops, project_cmds, queue_cmds
from outreach.cli.app import app

__all__ = ["account_cmds", "app", "contact_cmds", "experiment_cmds", "main", "ops", "project_cmds", "queue_cmds"]


def main() -> None:
    app()
