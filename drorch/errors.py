"""Error types that carry drorch's exit-code contract.

Every failure the CLI reports maps to one of the documented exit codes, so the
library raises these and the CLI only translates them; scripts and CI can rely on
the codes without parsing messages.
"""

from __future__ import annotations


class DrorchError(Exception):
    """Base class: a failure with a message meant for the operator."""

    exit_code = 1


class OperationFailed(DrorchError):
    """The operation ran and failed (or was rolled back)."""

    exit_code = 1


class InvalidInput(DrorchError):
    """Invalid usage, config or playbook; nothing was changed."""

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or [message]
        super().__init__(message if problems is None else message + "\n" + "\n".join(problems))


class RefusedForSafety(DrorchError):
    """A guard or precondition failed; nothing was changed."""

    exit_code = 3


class LeaseHeld(DrorchError):
    """Another controller holds the lease."""

    exit_code = 4
