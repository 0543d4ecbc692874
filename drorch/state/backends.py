"""Choosing the state backend the config names."""

from __future__ import annotations

from drorch.config.schema import Config
from drorch.state.journal import Journal
from drorch.state.sqlite import SQLiteJournal


def open_journal(config: Config) -> Journal:
    """The journal of ``config.state`` (paths relative to the config file)."""
    return SQLiteJournal(config.resolve_path(config.state.path))
