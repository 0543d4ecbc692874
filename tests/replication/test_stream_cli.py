"""``drorch replicate dynamodb`` as on-call runs it: killed mid-stream and restarted, --verify, bad input.

Every process a test starts is stopped by its PID; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from drorch.lab.control import Lab
from drorch.providers.estate import Estate
from drorch.state.checkpoints import open_checkpoints
from tests.helpers import drorch_cli, stop_process, wait_for
from tests.replication.stream_lab import items, replicated


def _replicator_process(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stderr:
        return subprocess.Popen([sys.executable, "-m", "drorch.cli", "replicate", "dynamodb"],
                                env={**os.environ, "DRORCH_CONFIG": str(config)}, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=stderr)


class _Writer(threading.Thread):
    """The application at seoul: new items, updates of earlier ones, a delete now and then, until stopped."""

    def __init__(self, estate: Estate, table: str) -> None:
        super().__init__(daemon=True)
        self.ddb, self.table, self.written, self.stop = estate.aws("seoul", "dynamodb"), table, 0, threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            self.ddb.put_item(TableName=self.table, Item={"pk": {"S": f"k{n}"}, "v": {"N": "0"}})
            if n >= 5:
                self.ddb.update_item(TableName=self.table, Key={"pk": {"S": f"k{n - 5}"}},
                                     UpdateExpression="SET v = v + :one",
                                     ExpressionAttributeValues={":one": {"N": "1"}})
            if n % 7 == 0 and n >= 10:
                self.ddb.delete_item(TableName=self.table, Key={"pk": {"S": f"k{n - 10}"}})
            n += 1
            self.written = n
            time.sleep(0.005)


def test_killed_mid_stream_then_restarted_loses_and_duplicates_nothing(lab: Lab, tmp_path: Path) -> None:
    with replicated(lab, tmp_path) as table:
        estate = Estate(table.config)
        seoul, tokyo = table.names["seoul"], table.names["tokyo"]
        writer = _Writer(estate, seoul)
        writer.start()
        log = tmp_path / "replicator.log"
        first = _replicator_process(table.config_path, log)
        second: subprocess.Popen[bytes] | None = None
        try:
            arn = estate.aws("seoul", "dynamodb").describe_table(TableName=seoul)["Table"]["LatestStreamArn"]
            store = open_checkpoints(table.config)
            wait_for(lambda: store.shards(arn) and len(items(estate, "tokyo", tokyo)) >= 50, timeout=30)  # shipping
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
            shipped_before = len(items(estate, "tokyo", tokyo))
            (killed_at,) = store.shards(arn).values()  # where the restart resumes
            assert killed_at.sequence is not None and not killed_at.finished
            wait_for(lambda: writer.written > shipped_before + 100, timeout=30)  # writes go on while it is down
            second = _replicator_process(table.config_path, log)
            time.sleep(1.0)
            writer.stop.set()
            writer.join(timeout=10)
            wait_for(lambda: items(estate, "tokyo", tokyo) == items(estate, "seoul", seoul), timeout=30, interval=0.5)
        finally:
            writer.stop.set()
            stop_process(first)
            if second is not None:
                stop_process(second)
        assert second is not None and second.returncode == 0, log.read_text()  # SIGTERM: a clean stop
        source = items(estate, "seoul", seoul)
        assert len(source) > 100 and any(item["v"] != {"N": "0"} for item in source.values())
        copies = items(estate, "tokyo", tokyo, strip=False)
        assert {k: {a: v for a, v in item.items() if not a.startswith("_drorch_")} for k, item in copies.items()} \
            == source
        verified = drorch_cli(table.config_path, "replicate", "dynamodb", "--verify", "--output", "json", timeout=60)
        assert verified.returncode == 0, verified.stderr
        assert json.loads(verified.stdout)["verify"][0]["same"] is True


def test_verify_finds_an_injected_difference(lab: Lab, tmp_path: Path) -> None:
    with replicated(lab, tmp_path) as table:
        estate = Estate(table.config)
        seoul, tokyo = table.names["seoul"], table.names["tokyo"]
        ddb = estate.aws("seoul", "dynamodb")
        for n in range(40):
            ddb.put_item(TableName=seoul, Item={"pk": {"S": f"k{n}"}, "v": {"N": str(n)}, "tags": {"SS": ["a", "b"]}})
        once = drorch_cli(table.config_path, "replicate", "dynamodb", "--once", "--verify", "--output", "json",
                          timeout=60)
        assert once.returncode == 0, once.stderr
        result = json.loads(once.stdout)
        assert result["ok"] and result["replication"]["shipped"] == 40 and result["verify"][0]["same"]

        estate.aws("tokyo", "dynamodb").update_item(TableName=tokyo, Key={"pk": {"S": "k7"}},
                                                    UpdateExpression="SET v = :v",
                                                    ExpressionAttributeValues={":v": {"N": "-1"}})
        before = items(estate, "tokyo", tokyo, strip=False)
        found = drorch_cli(table.config_path, "replicate", "dynamodb", "--verify", "--output", "json", timeout=60)
        assert found.returncode == 1, found.stderr
        (compared,) = json.loads(found.stdout)["verify"]
        assert not compared["same"] and compared["source_items"] == compared["target_items"] == 40
        assert len(compared["differing_segments"]) == 1
        assert compared["examples"] == [{"key": {"pk": {"S": "k7"}}, "problem": "different"}]
        assert items(estate, "tokyo", tokyo, strip=False) == before  # read-only

        text = drorch_cli(table.config_path, "replicate", "dynamodb", "--verify", timeout=60)
        assert text.returncode == 1 and "different: {'pk': {'S': 'k7'}}" in text.stdout
        assert f"{table.name}: tokyo differs from seoul" in text.stderr

        estate.aws("tokyo", "dynamodb").delete_item(TableName=tokyo, Key={"pk": {"S": "k9"}})
        fixed = drorch_cli(table.config_path, "replicate", "dynamodb", "--backfill", "--verify", "--output", "json",
                           timeout=60)
        assert fixed.returncode == 0, fixed.stderr
        done = json.loads(fixed.stdout)
        (backfilled,) = done["backfill"]
        assert (backfilled["copied"], backfilled["repaired"], backfilled["same"]) == (1, 1, 38)
        assert done["verify"][0]["same"]
        ddb.update_item(TableName=seoul, Key={"pk": {"S": "k7"}}, UpdateExpression="SET v = :v",
                        ExpressionAttributeValues={":v": {"N": "77"}})  # the stream still carries over a repair
        again = drorch_cli(table.config_path, "replicate", "dynamodb", "--once", "--verify", timeout=60)
        assert again.returncode == 0, again.stderr
        assert items(estate, "tokyo", tokyo)["k7"]["v"] == {"N": "77"}


def test_a_disabled_source_stream_exits_2_naming_the_table(lab: Lab, tmp_path: Path) -> None:
    with replicated(lab, tmp_path, views={"seoul": None}) as table:
        estate = Estate(table.config)
        estate.aws("seoul", "dynamodb").put_item(TableName=table.names["seoul"], Item={"pk": {"S": "k"}})
        refused = drorch_cli(table.config_path, "replicate", "dynamodb", "--once", "--output", "json", timeout=60)
        assert refused.returncode == 2, refused.stderr
        error = json.loads(refused.stdout)["error"]
        assert f"DynamoDB table {table.names['seoul']} at seoul (ap-northeast-2) has no stream enabled" in error
        assert "StreamViewType=NEW_AND_OLD_IMAGES" in error
        assert items(estate, "tokyo", table.names["tokyo"]) == {}
        unknown = drorch_cli(table.config_path, "replicate", "dynamodb", "--table", "nope", timeout=60)
        assert unknown.returncode == 2 and "--table nope" in unknown.stderr
