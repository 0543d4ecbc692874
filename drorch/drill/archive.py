"""Every drill and failover leaves its reports in the state directory, without anyone asking.

An auditor asks "show me last quarter's drills", an on-call engineer "what did the
3 a.m. failover do": both find ``reports/RUN_ID.{md,json,html}`` next to the
journal, written when the run ended (automatic failovers by ``serve`` included).
Writing a report never fails the run it describes: a full disk is noted, not raised.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from drorch.config.schema import Config
from drorch.drill.html import render
from drorch.drill.report import document, markdown
from drorch.state.journal import Journal

log = logging.getLogger(__name__)


def reports_dir(config: Config) -> Path:
    return config.resolve_path(config.state.path).parent / "reports"


def write_reports(config: Config, journal: Journal, run_id: str) -> Path | None:
    """Write the run's markdown, JSON and HTML reports (mode 0600); the directory, or None when it could not."""
    record = journal.run(run_id)
    if record is None:
        return None
    directory = reports_dir(config)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for suffix, text in (("md", markdown(record)), ("json", json.dumps(document(record), indent=2, default=str)),
                             ("html", render(record, journal))):
            path = directory / f"{run_id}.{suffix}"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as out:
                out.write(text)
    except OSError as exc:
        log.warning("the reports of run %s were not written to %s: %s", run_id, directory, exc.strerror)
        return None
    return directory
