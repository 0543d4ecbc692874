"""The lab seen as a real estate: its config outside the lab, wired to the lab only through commands.

Drills on a real estate use only what the config names (``ground_truth``, ``chaos``,
``isolated``), never ``lab.json``. To prove that path end to end, tests and benchmarks
write the lab's config into another folder (no ``lab.json`` beside it, every path
absolute) with those sections naming the lab's own commands, exactly as an estate
would name its own.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from drorch.lab.control import Lab

PATH_KEYS = frozenset({"file", "clouds_file", "credentials_file", "path"})


def estate_config(lab: Lab, directory: Path, **sections: Any) -> Path:
    """Write ``directory/drorch.yaml``: the lab's config with absolute paths and ``sections`` added at the top.

    The state file stays the lab's, so the journal and the controller lease are shared with the lab's config.
    """

    def absolute(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: (str(lab.layout.root / value) if key in PATH_KEYS and isinstance(value, str)
                          and not value.startswith("/") else absolute(value)) for key, value in node.items()}
        if isinstance(node, list):
            return [absolute(item) for item in node]
        return node

    document = absolute(yaml.safe_load(lab.layout.config.read_text()))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "drorch.yaml"
    path.write_text(yaml.safe_dump({**document, **sections}, sort_keys=False))
    return path


def lab_command(lab: Lab, *args: str) -> list[str]:
    """``drorch lab ARGS --dir LAB`` as an estate's configured command names it."""
    return [sys.executable, "-m", "drorch.cli", "lab", *args, "--dir", str(lab.layout.root)]


def lab_ground_truth(lab: Lab) -> dict[str, Any]:
    """The ``ground_truth`` section naming the lab's client (``lab load``) and verifier (``lab orders``)."""
    return {"load": lab_command(lab, "load", "--rate", "{rate}", "--duration", "86400", "--out", "{log}"),
            "verify": lab_command(lab, "orders", "--log", "{log}")}
