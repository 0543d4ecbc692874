"""The VPN probe merges the AWS telemetry and the strongSwan CHILD_SAs: degraded vs outage."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from drorch.config import load_config
from drorch.lab import vpn
from drorch.lab.control import Lab
from drorch.probes import vpn as vpn_probe
from drorch.providers.estate import Estate


@pytest.fixture()
def probed(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Estate, vpn.VpnLab]]:
    """A real strongSwan VPN, and the lab's config with nhn's VPN pointing at its VICI socket."""
    tunnels = vpn.start(tmp_path_factory.mktemp("vpn"))
    try:
        document = yaml.safe_load(lab.layout.config.read_text())
        document["sites"]["nhn"]["vpn"].update(
            vici_socket=str(tunnels.nhn.vici_socket), tunnels=[t.name for t in tunnels.tunnels])
        path = lab.layout.root / "drorch-vpn.yaml"  # beside the lab's config: relative secret paths still work
        path.write_text(yaml.safe_dump(document))
        yield Estate(load_config(path)), tunnels
    finally:
        vpn.stop(tunnels)


def test_vpn_probe_reports_up_degraded_and_down(probed: tuple[Estate, vpn.VpnLab]) -> None:
    estate, tunnels = probed
    result = vpn_probe.probe(estate, "nhn")
    assert result is not None and result.ok and result.value == 2 and not result.detail["degraded"], result
    assert set(result.detail["views"]) == {"aws", "strongswan"}
    first, second = tunnels.tunnels
    vpn.tunnel_down(tunnels, first.name)
    try:
        degraded = vpn_probe.probe(estate, "nhn")
        assert degraded is not None and degraded.ok and degraded.value == 1 and degraded.detail["degraded"]
        vpn.tunnel_down(tunnels, second.name)
        down = vpn_probe.probe(estate, "nhn")
        assert down is not None and not down.ok and down.value == 0
    finally:
        vpn.tunnel_up(tunnels, first.name)
        vpn.tunnel_up(tunnels, second.name)
    healed = vpn_probe.probe(estate, "nhn")
    assert healed is not None and healed.value == 2
