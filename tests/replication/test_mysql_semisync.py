"""Semi-sync watch: when tokyo stops acknowledging, seoul falls back to async after its 3 s timeout; the metric
and `drorch replication status` say the RPO guarantee is gone, and both recover when tokyo acknowledges again."""

from __future__ import annotations

import json
import time
from typing import Any

from drorch.lab.control import Lab
from tests.helpers import drorch_cli, one_round_metrics, wait_for


def semi_sync_metric(lab: Lab) -> float | None:
    value: float | None = one_round_metrics(lab).registry.get_sample_value("drorch_semi_sync_active", {"site": "seoul"})
    return value


def replication_status(lab: Lab) -> Any:
    done = drorch_cli(lab.layout.config, "replication", "status", "--output", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_semi_sync_fallback_is_reported_then_recovers(home: Lab) -> None:
    seoul, tokyo = home.admin("seoul"), home.admin("tokyo")
    assert semi_sync_metric(home) == 1
    tokyo.execute("STOP SLAVE IO_THREAD")
    try:
        started = time.monotonic()
        seoul.execute("INSERT INTO shop.orders (client_ref, site) VALUES ('waits-for-an-ack', 'seoul')")
        assert time.monotonic() - started >= 2.5  # the commit waited rpl_semi_sync_master_timeout (3 s) for tokyo
        assert not seoul.state().semi_sync_source_active
        assert semi_sync_metric(home) == 0
        document = replication_status(home)
        semi = document["sites"]["seoul"]["semi_sync"]
        assert semi["source_enabled"] and not semi["source_active"] and not semi["rpo_guarantee"]
        assert any("seoul: semi-sync is enabled but fell back to async" in note and "RPO guarantee gone" in note
                   for note in document["notes"])
        text = drorch_cli(home.layout.config, "replication", "status")
        assert "RPO guarantee gone" in text.stdout
    finally:
        tokyo.execute("START SLAVE IO_THREAD")
    wait_for(lambda: seoul.state().semi_sync_source_active, timeout=20)
    assert semi_sync_metric(home) == 1
    document = replication_status(home)
    assert document["sites"]["seoul"]["semi_sync"]["rpo_guarantee"]
    assert not any("RPO guarantee gone" in note for note in document["notes"])
