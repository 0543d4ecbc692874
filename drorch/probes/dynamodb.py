"""DynamoDB tables of a site: status, their change streams, and the age of other regions' probe items here."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from drorch.config.schema import AwsProvider
from drorch.probes.result import ProbeResult, timed
from drorch.providers.aws import cloudwatch, dynamodb, streams
from drorch.providers.aws.streams import StreamInfo
from drorch.providers.estate import Estate


def probe(estate: Estate, site: str) -> ProbeResult | None:
    config = estate.config.site(site)
    if config.dynamodb is None or not isinstance(config.provider, AwsProvider):
        return None
    tables, probe_table, region = config.dynamodb.tables, config.dynamodb.probe_table, config.provider.region

    def measure() -> tuple[bool, float | None, dict[str, Any]]:
        # Three independent groups of calls, run side by side: a status round waits for the slowest only.
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix=f"ddb-{site}") as pool:
            tables_future = pool.submit(_tables_and_streams, estate, site, tables)
            lags_future = pool.submit(_probe_lags, estate, site, probe_table, region)
            watch = estate.aws(site, "cloudwatch")
            reported_future = pool.submit(
                lambda: {name: cloudwatch.replication_latency_seconds(watch, name, region) for name in tables})
            (statuses, stream_states), lags, reported = (
                tables_future.result(), lags_future.result(), reported_future.result())
        worst = max(lags.values()) if lags else None
        detail = {"tables": statuses, "probe_lag": lags,
                  "streams": {name: {"status": info.status, "open_shards": sum(s.open for s in info.shards)}
                              for name, info in stream_states.items()},
                  "aws_replication_latency": {k: v for k, v in reported.items() if v is not None}}
        healthy = all(s == "ACTIVE" for s in statuses.values()) and all(
            info.status == "ENABLED" for info in stream_states.values())
        return healthy, worst, detail

    return timed(site, "dynamodb", measure)


def _tables_and_streams(estate: Estate, site: str, tables: list[str]) -> tuple[dict[str, str], dict[str, StreamInfo]]:
    client = estate.aws(site, "dynamodb")
    tables_now = {name: dynamodb.table_status(client, name) for name in tables}
    stream_client = estate.aws(site, "dynamodbstreams")
    stream_states = {name: streams.describe(stream_client, table.stream_arn)
                     for name, table in tables_now.items() if table.stream_enabled and table.stream_arn}
    return {name: table.status for name, table in tables_now.items()}, stream_states


def _probe_lags(estate: Estate, site: str, probe_table: str | None, region: str) -> dict[str, float]:
    """How far this region's copy trails each other region, by their probe items.

    Against the writer's own newest probe (read in its region): the lag is how much older the
    newest one here is, so it measures replication, not whether a probe writer is running (0
    when everything written has arrived). When the writer's region does not answer, the lag
    is the age of its newest probe here: what a failover now would lose at most.
    """
    if probe_table is None:
        return {}
    seen_here = dynamodb.latest_probes(estate.aws(site, "dynamodb"), probe_table)
    at_source = _own_probes(estate, site)
    now = time.time()
    lags = {}
    for writer, item in seen_here.items():
        if writer == region:
            continue
        newest = at_source.get(writer)
        lags[writer] = max(0.0, (newest.written_at if newest is not None else now) - item.written_at)
    return lags


def _own_probes(estate: Estate, site: str) -> dict[str, dynamodb.Probe]:
    """Each other AWS site's newest own probe, read in its own region (regions that do not answer are left out)."""
    found = {}
    for name, other in estate.config.sites.items():
        if name == site or not isinstance(other.provider, AwsProvider) or other.dynamodb is None:
            continue
        table = other.dynamodb.probe_table
        if table is None:
            continue
        try:
            probe = dynamodb.latest_probes(estate.aws(name, "dynamodb"), table).get(other.provider.region)
        except Exception:  # that region is unreachable: its probes' age here is the bound
            continue
        if probe is not None:
            found[other.provider.region] = probe
    return found
