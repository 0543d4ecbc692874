"""Keystone: version discovery, v2.0 and v3 password authentication, and the service catalog.

NHN Cloud authenticates with Keystone v2.0 (``tenantId``), while most tooling defaults to v3,
so both are served from the same user/project. There is one user in the ``Default`` domain.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify

from drorch.lab.openstack_api.config import ApiConfig, stable_id
from drorch.lab.openstack_api.state import LabState, Token
from drorch.lab.openstack_api.web import identity_error, json_body

log = logging.getLogger(__name__)

DEFAULT_DOMAIN = {"id": "default", "name": "Default"}
_ROLE = {"id": stable_id("role", "member").replace("-", ""), "name": "member"}
_AUTH_FAILED = "The request you have made requires authentication."


@dataclass(frozen=True)
class CatalogEntry:
    """One service in the catalog; ``path`` is appended to the config's base URL.

    Keystone adds its own ``identity`` entry, pointing at the API version the token came from.
    """

    type: str
    name: str
    path: str


def _iso_us(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def _version(config: ApiConfig, vid: str, status: str, updated: str, media: str) -> dict[str, Any]:
    path = "/v3/" if vid.startswith("v3") else "/v2.0/"
    return {
        "id": vid,
        "status": status,
        "updated": updated,
        "links": [{"rel": "self", "href": config.url(path)}],
        "media-types": [
            {"base": "application/json", "type": f"application/vnd.openstack.identity-{media}+json"}
        ],
    }


def _versions(config: ApiConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        _version(config, "v3.14", "stable", "2020-04-07T00:00:00Z", "v3"),
        _version(config, "v2.0", "stable", "2016-08-04T00:00:00Z", "v2.0"),
    )


def _catalog_v2(config: ApiConfig, catalog: Sequence[CatalogEntry]) -> list[dict[str, Any]]:
    catalog = [CatalogEntry("identity", "keystone", "/v2.0"), *catalog]
    return [
        {
            "type": entry.type,
            "name": entry.name,
            "endpoints": [
                {
                    "id": stable_id("endpoint", entry.type).replace("-", ""),
                    "region": config.region,
                    "publicURL": config.url(entry.path),
                    "internalURL": config.url(entry.path),
                }
            ],
            "endpoints_links": [],
        }
        for entry in catalog
    ]


def _catalog_v3(config: ApiConfig, catalog: Sequence[CatalogEntry]) -> list[dict[str, Any]]:
    catalog = [CatalogEntry("identity", "keystone", "/v3"), *catalog]
    return [
        {
            "id": stable_id("service", entry.type).replace("-", ""),
            "type": entry.type,
            "name": entry.name,
            "endpoints": [
                {
                    "id": stable_id("endpoint", entry.type, interface).replace("-", ""),
                    "interface": interface,
                    "region": config.region,
                    "region_id": config.region,
                    "url": config.url(entry.path),
                }
                for interface in ("public", "internal")
            ],
        }
        for entry in catalog
    ]


def _v2_tenant_ok(config: ApiConfig, auth: dict[str, Any]) -> bool | None:
    """True/False for a matching/mismatching tenant, None when the request asks for no tenant."""
    if "tenantId" in auth:
        return bool(auth["tenantId"] == config.project_id)
    if "tenantName" in auth:
        return bool(auth["tenantName"] == config.project_name)
    return None


def _v2_response(config: ApiConfig, catalog: Sequence[CatalogEntry], token_id: str, token: Token) -> Response:
    body_token: dict[str, Any] = {
        "id": token_id,
        "issued_at": _iso_us(token.issued),
        "expires": token.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "audit_ids": [token.audit_id],
    }
    scoped = token.project_id is not None
    if scoped:
        body_token["tenant"] = {
            "id": config.project_id,
            "name": config.project_name,
            "enabled": True,
            "description": None,
        }
    return jsonify(
        {
            "access": {
                "token": body_token,
                "serviceCatalog": _catalog_v2(config, catalog) if scoped else [],
                "user": {
                    "id": config.user_id,
                    "name": config.user,
                    "username": config.user,
                    "roles": [{"name": _ROLE["name"]}] if scoped else [],
                    "roles_links": [],
                },
                "metadata": {"is_admin": 0, "roles": [_ROLE["id"]] if scoped else []},
            }
        }
    )


def _v3_user_error(config: ApiConfig, user: Any) -> Response | None:
    """Check a v3 password-method user; Keystone answers 400 for a name without a domain."""
    if not isinstance(user, dict):
        return identity_error(400, "Bad Request", "Expecting to find user in password.")
    if "id" in user:
        known = user["id"] == config.user_id
    elif "name" in user:
        domain = user.get("domain")
        if not isinstance(domain, dict):
            return identity_error(400, "Bad Request", "Expecting to find domain in user.")
        known = user["name"] == config.user and _is_default_domain(domain)
    else:
        return identity_error(400, "Bad Request", "Expecting to find id or name in user.")
    if not known or not secrets.compare_digest(str(user.get("password", "")), config.password):
        return identity_error(401, "Unauthorized", _AUTH_FAILED)
    return None


def _is_default_domain(domain: dict[str, Any]) -> bool:
    return domain.get("id") == DEFAULT_DOMAIN["id"] or domain.get("name") == DEFAULT_DOMAIN["name"]


def _v3_project_ok(config: ApiConfig, scope: Any) -> bool | None:
    """True/False for a matching/mismatching project scope, None for an unscoped request."""
    if scope is None:
        return None
    project = scope.get("project") if isinstance(scope, dict) else None
    if not isinstance(project, dict):
        return False
    if "id" in project:
        return bool(project["id"] == config.project_id)
    domain = project.get("domain")
    return bool(
        project.get("name") == config.project_name and isinstance(domain, dict) and _is_default_domain(domain)
    )


def _v3_response(config: ApiConfig, catalog: Sequence[CatalogEntry], token_id: str, token: Token) -> Response:
    body: dict[str, Any] = {
        "methods": ["password"],
        "user": {
            "domain": DEFAULT_DOMAIN,
            "id": config.user_id,
            "name": config.user,
            "password_expires_at": None,
        },
        "audit_ids": [token.audit_id],
        "issued_at": _iso_us(token.issued),
        "expires_at": _iso_us(token.expires),
    }
    if token.project_id is not None:
        body["project"] = {"domain": DEFAULT_DOMAIN, "id": config.project_id, "name": config.project_name}
        body["is_domain"] = False
        body["roles"] = [_ROLE]
        body["catalog"] = _catalog_v3(config, catalog)
    response = jsonify({"token": body})
    response.status_code = 201
    response.headers["X-Subject-Token"] = token_id
    return response


def blueprint(config: ApiConfig, state: LabState, catalog: Sequence[CatalogEntry]) -> Blueprint:
    """Identity routes. None of them needs a token: they are how clients get one."""
    bp = Blueprint("identity", __name__)

    @bp.get("/")
    def root() -> tuple[Response, int]:
        # Keystone answers its root with 300 Multiple Choices and every version it serves.
        return jsonify({"versions": {"values": list(_versions(config))}}), 300

    @bp.get("/v3")
    def v3_version() -> Response:
        return jsonify({"version": _versions(config)[0]})

    @bp.get("/v2.0")
    def v2_version() -> Response:
        return jsonify({"version": _versions(config)[1]})

    @bp.post("/v2.0/tokens")
    def v2_tokens() -> Response:
        body = json_body()
        auth = body.get("auth") if isinstance(body, dict) else None
        creds = auth.get("passwordCredentials") if isinstance(auth, dict) else None
        if not isinstance(auth, dict) or not isinstance(creds, dict):
            return identity_error(400, "Bad Request", "Expecting auth with passwordCredentials.")
        user_ok = creds.get("username") == config.user or creds.get("userId") == config.user_id
        password_ok = secrets.compare_digest(str(creds.get("password", "")), config.password)
        tenant_ok = _v2_tenant_ok(config, auth)
        if not (user_ok and password_ok) or tenant_ok is False:
            log.info("v2.0 authentication failed for user %r", creds.get("username"))
            return identity_error(401, "Unauthorized", _AUTH_FAILED)
        token_id, token = state.issue_token(config.project_id if tenant_ok else None)
        return _v2_response(config, catalog, token_id, token)

    @bp.post("/v3/auth/tokens")
    def v3_tokens() -> Response:
        body = json_body()
        auth = body.get("auth") if isinstance(body, dict) else None
        identity = auth.get("identity") if isinstance(auth, dict) else None
        if not isinstance(auth, dict) or not isinstance(identity, dict):
            return identity_error(400, "Bad Request", "Expecting to find identity in auth.")
        if "password" not in identity.get("methods", []):
            return identity_error(401, "Unauthorized", "Only the password method is supported by the lab.")
        password = identity.get("password")
        error = _v3_user_error(config, password.get("user") if isinstance(password, dict) else None)
        if error is not None:
            log.info("v3 authentication failed (HTTP %s)", error.status_code)
            return error
        project_ok = _v3_project_ok(config, auth.get("scope"))
        if project_ok is False:
            return identity_error(401, "Unauthorized", _AUTH_FAILED)
        token_id, token = state.issue_token(config.project_id if project_ok else None)
        return _v3_response(config, catalog, token_id, token)

    return bp
