"""vpn.assert_up on the merged view: the lab's AWS telemetry and real strongSwan daemons.

The lab's config only has the AWS side of NHN's VPN; here two charon daemons are
started (as in ``tests/lab/test_vpn_probe.py``) and the config gains their VICI
socket, so a tunnel counts as up only when AWS and strongSwan both say so. The test
skips only when strongSwan cannot run here (not root, or its tools missing).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from drorch.engine.catalogue import ActionContext, catalogue
from drorch.errors import OperationFailed
from drorch.lab import vpn
from drorch.lab.control import Lab
from drorch.providers.estate import Estate


@pytest.fixture()
def merged(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Estate, vpn.VpnLab]]:
    """A running strongSwan VPN and an estate whose NHN VPN config reads both views; the daemons are stopped after."""
    # Like tests/lab/test_vpn.py: without root or strongSwan this fails with vpn.start's own message, never skips.
    tunnels = vpn.start(tmp_path_factory.mktemp("vpn"))
    try:
        site = lab.config.sites["nhn"]
        assert site.vpn is not None
        config = site.vpn.model_copy(update={"vici_socket": tunnels.nhn.vici_socket,
                                             "tunnels": [t.name for t in tunnels.tunnels]})
        sites = {**lab.config.sites, "nhn": site.model_copy(update={"vpn": config})}
        yield Estate(lab.config.model_copy(update={"sites": sites})), tunnels
    finally:
        vpn.stop(tunnels)
    assert not vpn.is_running(tunnels)


def test_assert_up_names_the_tunnel_strongswan_sees_down(merged: tuple[Estate, vpn.VpnLab]) -> None:
    estate, tunnels = merged
    spec = catalogue()["vpn.assert_up"]

    def assert_up(**params: Any) -> dict[str, Any]:
        return spec.run(ActionContext(estate, {}), spec.params.model_validate({"site": "nhn", **params}))

    first, second = (t.name for t in tunnels.tunnels)
    result = assert_up()
    assert result["up"] == 2 and result["down"] == []
    names = list(result["tunnels"])
    assert len(names) == 2 and first in names[0] and second in names[1]  # "AWS outside IP / CHILD_SA name"
    vpn.tunnel_down(tunnels, first)
    try:
        with pytest.raises(OperationFailed, match=f"1 of 2 tunnels up, 2 needed; down: [^,]*{first}$"):
            assert_up()
        assert assert_up(min_tunnels=1)["up"] == 1
    finally:
        vpn.tunnel_up(tunnels, first)
    assert assert_up()["up"] == 2
