"""HTTP helpers shared by the service blueprints: token checks, JSON bodies, Keystone-style errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, jsonify, request

from drorch.lab.openstack_api.config import ApiConfig
from drorch.lab.openstack_api.state import LabState


def identity_error(code: int, title: str, message: str, *, realm: str | None = None) -> Response:
    """Keystone's error body; keystonemiddleware sends the same one for a missing or bad token."""
    response = jsonify({"error": {"code": code, "title": title, "message": message}})
    response.status_code = code
    if realm is not None:
        response.headers["WWW-Authenticate"] = f'Keystone uri="{realm}"'
    return response


def token_guard(config: ApiConfig, state: LabState) -> Callable[[], Response | None]:
    """Build a ``before_request`` hook that rejects requests without a valid project-scoped token.

    Like keystonemiddleware it answers 401 and points at Keystone, which makes keystoneauth
    re-authenticate once (e.g. after the lab server restarted and forgot its tokens).
    """

    def check() -> Response | None:
        token = state.check_token(request.headers.get("X-Auth-Token", ""))
        if token is None or token.project_id != config.project_id:
            return identity_error(
                401,
                "Unauthorized",
                "The request you have made requires authentication.",
                realm=config.url("/v3"),
            )
        return None

    return check


def json_body() -> Any:
    """The parsed JSON request body, or None when it is missing or not JSON."""
    return request.get_json(silent=True, force=True)
