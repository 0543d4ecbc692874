"""DynamoDB tables of a site: status, their change streams, and the age of other regions' probe items here."""

from __future__ import annotations

import time
from typing import Any

from drorch.config.schema import AwsProvider
from drorch.probes.result import ProbeResult, timed
from drorch.providers.aws import cloudwatch, dynamodb, streams
from drorch.providers.estate import Estate


def probe(estate: Estate, site: str) -> ProbeResult | None:
    config = estate.config.site(site)
    if config.dynamodb is None or not isinstance(config.provider, AwsProvider):
        return None
    tables, probe_table, region = config.dynamodb.tables, config.dynamodb.probe_table, config.provider.region

    def measure() -> tuple[bool, float | None, dict[str, Any]]:
        client = estate.aws(site, "dynamodb")
        tables_now = {name: dynamodb.table_status(client, name) for name in tables}
        statuses = {name: table.status for name, table in tables_now.items()}
        stream_client = estate.aws(site, "dynamodbstreams")
        stream_states = {name: streams.describe(stream_client, table.stream_arn)
                         for name, table in tables_now.items() if table.stream_enabled and table.stream_arn}
        lags: dict[str, float] = {}
        if probe_table is not None:
            now = time.time()
            for writer, item in dynamodb.latest_probes(client, probe_table).items():
                if writer != region:
                    lags[writer] = max(0.0, now - item.written_at)
        worst = max(lags.values()) if lags else None
        watch = estate.aws(site, "cloudwatch")
        reported = {name: cloudwatch.replication_latency_seconds(watch, name, region) for name in tables}
        detail = {"tables": statuses, "probe_lag": lags,
                  "streams": {name: {"status": info.status, "open_shards": sum(s.open for s in info.shards)}
                              for name, info in stream_states.items()},
                  "aws_replication_latency": {k: v for k, v in reported.items() if v is not None}}
        healthy = all(s == "ACTIVE" for s in statuses.values()) and all(
            info.status == "ENABLED" for info in stream_states.values())
        return healthy, worst, detail

    return timed(site, "dynamodb", measure)
