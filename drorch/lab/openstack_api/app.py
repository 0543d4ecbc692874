"""Assembles the lab OpenStack API: one Flask app serving every service under its own path prefix.

All services share one host:port, as the catalog says; version-discovery documents and
Keystone are public, everything else requires a token from this app's Keystone.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from drorch.lab.openstack_api import compute, keystone, loadbalancer, nks
from drorch.lab.openstack_api.config import ApiConfig
from drorch.lab.openstack_api.seed import load_seed
from drorch.lab.openstack_api.state import LabState
from drorch.lab.openstack_api.web import token_guard


def _http_error(error: HTTPException) -> Response:
    """Unrouted paths and wrong methods get a JSON body too, since SDK error parsing expects JSON."""
    response = jsonify({"error": {"code": error.code, "title": error.name, "message": error.description}})
    response.status_code = error.code or 500
    return response


def make_app(config: ApiConfig, state: LabState | None = None) -> Flask:
    """Build the WSGI app; ``state`` defaults to a fresh copy of the default seed.

    Passing a state lets an embedding test or tool inspect or prepare resources directly
    (use ``state.transaction()``).
    """
    state = state if state is not None else load_seed()
    app = Flask(__name__)
    # keystoneauth probes endpoints both with and without a trailing slash; answer both, don't redirect.
    app.url_map.strict_slashes = False
    app.register_error_handler(HTTPException, _http_error)

    catalog = [compute.CATALOG, loadbalancer.NEUTRON, loadbalancer.OCTAVIA, nks.CATALOG]
    app.register_blueprint(keystone.blueprint(config, state, catalog))
    for blueprint in [*compute.blueprints(config, state), *nks.blueprints(config, state)]:
        app.register_blueprint(blueprint)
    app.register_blueprint(loadbalancer.discovery_blueprint(config))
    lbaas = loadbalancer.blueprint(config, state)
    lbaas.before_request(token_guard(config, state))
    for name, mount in loadbalancer.MOUNTS:
        app.register_blueprint(lbaas, name=name, url_prefix=mount)
    return app
