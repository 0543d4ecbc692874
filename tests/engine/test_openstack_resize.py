"""The ``openstack.server_resize`` action on the lab's NHN cloud: plan, run, idempotency, errors.

The lab is shared by every test of the worker, so each resized server is put back on its
flavor, in the status it had, in a ``finally`` block.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from drorch.engine.catalogue import ActionContext, catalogue
from drorch.errors import OperationFailed
from drorch.lab.control import Lab
from drorch.providers.estate import Estate
from drorch.providers.openstack import compute

ACTIVE_SERVER, SHUTOFF_SERVER = "nhn-app-1", "nhn-app-2"
SEED_FLAVOR, LARGE, SMALL = "m2.c2m4", "m2.c4m8", "t2.c1m1"
RESIZE = "openstack.server_resize"


def run(estate: Estate, **params: Any) -> dict[str, Any]:
    """Validate ``params`` as the executor does and run the action."""
    spec = catalogue()[RESIZE]
    return spec.run(ActionContext(estate, {}), spec.params.model_validate(params))


def plan(estate: Estate, **params: Any) -> list[str]:
    spec = catalogue()[RESIZE]
    assert spec.plan is not None
    return spec.plan(ActionContext(estate, {}), spec.params.model_validate(params))


def state(lab: Lab, name: str) -> tuple[str, str | None]:
    found = compute.servers(lab.estate.openstack("nhn"), [name])[0]
    return found.status, found.flavor


def test_resize_is_registered_as_a_mutating_action_with_a_plan() -> None:
    spec = catalogue()[RESIZE]
    assert spec.mutating and spec.plan is not None
    assert spec.params.model_validate({"site": "nhn", "server": "s", "flavor": "f"}).model_dump() == {
        "site": "nhn", "server": "s", "flavor": "f", "timeout": 600.0}


@pytest.mark.parametrize("params", [{"site": "nhn", "server": ACTIVE_SERVER},
                                    {"site": "nhn", "server": "", "flavor": LARGE},
                                    {"site": "nhn", "server": ACTIVE_SERVER, "flavor": LARGE, "timeout": 0}])
def test_resize_params_are_checked(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        catalogue()[RESIZE].params.model_validate(params)


def test_resize_up_and_back_plans_and_is_idempotent(lab: Lab) -> None:
    estate = lab.estate
    server = {"site": "nhn", "server": ACTIVE_SERVER}
    assert state(lab, ACTIVE_SERVER) == ("ACTIVE", SEED_FLAVOR)
    try:
        assert plan(estate, **server, flavor=SEED_FLAVOR) == []
        assert plan(estate, **server, flavor=LARGE) == [f"nhn server {ACTIVE_SERVER}: flavor {SEED_FLAVOR} -> {LARGE}"]
        assert state(lab, ACTIVE_SERVER) == ("ACTIVE", SEED_FLAVOR)  # planning changed nothing

        first = run(estate, **server, flavor=LARGE, timeout=60)
        assert first == {"server": ACTIVE_SERVER, "flavor": LARGE, "previous": SEED_FLAVOR, "status": "ACTIVE",
                         "changed": True}
        assert state(lab, ACTIVE_SERVER) == ("ACTIVE", LARGE)
        assert plan(estate, **server, flavor=LARGE) == []
        again = run(estate, **server, flavor=LARGE, timeout=60)
        assert (again["changed"], again["previous"], again["flavor"]) == (False, LARGE, LARGE)

        assert plan(estate, **server, flavor=SEED_FLAVOR) == [
            f"nhn server {ACTIVE_SERVER}: flavor {LARGE} -> {SEED_FLAVOR}"]
        assert run(estate, **server, flavor=SEED_FLAVOR, timeout=60)["changed"] is True
        assert plan(estate, **server, flavor=SEED_FLAVOR) == []
    finally:
        compute.resize(estate.openstack("nhn"), ACTIVE_SERVER, SEED_FLAVOR, timeout=60)
    assert state(lab, ACTIVE_SERVER) == ("ACTIVE", SEED_FLAVOR)


def test_resizing_a_shutoff_server_keeps_it_shutoff(lab: Lab) -> None:
    estate = lab.estate
    server = {"site": "nhn", "server": SHUTOFF_SERVER}
    assert state(lab, SHUTOFF_SERVER) == ("SHUTOFF", SEED_FLAVOR)
    try:
        assert plan(estate, **server, flavor=SMALL) == [f"nhn server {SHUTOFF_SERVER}: flavor {SEED_FLAVOR} -> {SMALL}"]
        result = run(estate, **server, flavor=SMALL, timeout=60)
        assert (result["status"], result["flavor"], result["changed"]) == ("SHUTOFF", SMALL, True)
        assert state(lab, SHUTOFF_SERVER) == ("SHUTOFF", SMALL)
        assert plan(estate, **server, flavor=SMALL) == []
    finally:
        compute.resize(estate.openstack("nhn"), SHUTOFF_SERVER, SEED_FLAVOR, timeout=60)
    assert state(lab, SHUTOFF_SERVER) == ("SHUTOFF", SEED_FLAVOR)


def test_unknown_flavor_or_server_is_named(lab: Lab) -> None:
    estate = lab.estate
    flavors = rf"flavor m9\.huge not found in cloud nhn-lab; it has {SEED_FLAVOR}, {LARGE}, {SMALL}$"
    with pytest.raises(OperationFailed, match=flavors):
        plan(estate, site="nhn", server=ACTIVE_SERVER, flavor="m9.huge")
    with pytest.raises(OperationFailed, match=flavors):
        run(estate, site="nhn", server=ACTIVE_SERVER, flavor="m9.huge", timeout=10)
    with pytest.raises(OperationFailed, match=r"server\(s\) not found in cloud nhn-lab: nhn-app-9$"):
        run(estate, site="nhn", server="nhn-app-9", flavor=LARGE, timeout=10)
    assert state(lab, ACTIVE_SERVER) == ("ACTIVE", SEED_FLAVOR)
