"""The DynamoDB probe-item writer, against the lab's moto server: one sequenced item per region per interval."""

from __future__ import annotations

import functools
import time

from drorch.data.probe_items import ProbeItemWriter, targets
from drorch.lab.control import Lab
from drorch.providers.aws import dynamodb
from tests.helpers import wait_for


def test_every_aws_region_gets_fresh_sequenced_probes(lab: Lab) -> None:
    found = {target.site: target for target in targets(lab.estate)}
    assert set(found) == {"seoul", "tokyo"}  # nhn is not on AWS: it has no probe table
    writer = ProbeItemWriter(lab.estate, interval=0.2)
    started = time.time()
    writer.start()
    try:
        for site, target in found.items():
            client = lab.estate.aws(site, "dynamodb")
            first = wait_for(functools.partial(_own_probe, client, target.table, target.region, started))
            later = wait_for(functools.partial(_newer, client, target.table, target.region, first.seq), timeout=5)
            assert later.seq > first.seq and later.written_at > first.written_at
            assert later.written_at <= time.time()
        assert writer.errors == {}
        assert set(writer.last_written) == {"seoul", "tokyo"}
    finally:
        writer.stop()


def _own_probe(client: object, table: str, region: str, since: float) -> dynamodb.Probe | None:
    probe = dynamodb.latest_probes(client, table).get(region)
    return probe if probe is not None and probe.written_at >= since else None


def _newer(client: object, table: str, region: str, seq: int) -> dynamodb.Probe | None:
    probe = dynamodb.latest_probes(client, table).get(region)
    return probe if probe is not None and probe.seq > seq else None
