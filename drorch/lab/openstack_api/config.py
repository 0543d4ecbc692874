"""Configuration of one lab OpenStack API instance.

The config is frozen because catalog URLs, credentials and ids are handed to clients once
and must not drift while the server runs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

_LAB_NAMESPACE = uuid.UUID("6c1d2f0e-4b8a-4f57-9d0a-3e5c7b1a2d40")


def stable_id(*parts: str) -> str:
    """Return a UUID derived from ``parts``, so ids the seed leaves out are the same on every run."""
    return str(uuid.uuid5(_LAB_NAMESPACE, "/".join(parts)))


@dataclass(frozen=True)
class ApiConfig:
    """Who may log in, which project and region they get, and where the API is reachable.

    ``base_url`` is the public URL clients use (e.g. ``http://127.0.0.1:8774``); every catalog
    entry and version link is built from it, so it must be what clients can actually reach.
    ``transition_seconds`` delays server power changes and node-group scaling so a lab can
    observe in-progress states; 0 applies them at once.
    """

    user: str
    password: str = field(repr=False)
    project_name: str
    project_id: str
    region: str
    base_url: str
    transition_seconds: float = 0.0

    @classmethod
    def create(
        cls,
        *,
        user: str,
        password: str,
        project_name: str,
        region: str,
        base_url: str,
        project_id: str | None = None,
        transition_seconds: float = 0.0,
    ) -> ApiConfig:
        """Build a config, deriving a Keystone-style 32-hex project id from the name if none is given."""
        return cls(
            user=user,
            password=password,
            project_name=project_name,
            project_id=project_id or uuid.UUID(stable_id("project", project_name)).hex,
            region=region,
            base_url=base_url.rstrip("/"),
            transition_seconds=transition_seconds,
        )

    @property
    def user_id(self) -> str:
        """Keystone user id; derived from the user name so tokens name the same user every run."""
        return uuid.UUID(stable_id("user", self.user)).hex

    def url(self, path: str) -> str:
        """Absolute public URL for a path such as ``/compute/v2.1``."""
        return self.base_url + path
