"""The bad-input corpus: malformed configs, playbooks and command lines, run against the live lab.

Every case must exit 2 with a message that names what is wrong (the file and field for files, and
how to fix it where a case names that too), and the lab's state — database roles and data, DNS
records, capacity — must be exactly what it was before the corpus ran.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from drorch.lab.control import Lab
from tests.helpers import estate_state

FAILOVER = Path(__file__).resolve().parents[2] / "playbooks" / "failover.yaml"
STATE_PATH = "  path: state/drorch.db\n"
ORDERS_AT_TOKYO = "        tokyo: dr-orders-table\n"
SEMI_SYNC_PAIR = "    - - seoul\n      - tokyo\n"

# (case, edit of the lab's drorch.yaml: (old text, new text), what the message must name: one text, or several
# such as the field and the fix)
CONFIG_CASES: list[tuple[str, tuple[str, str], str | tuple[str, ...]]] = [
    ("unknown top-level key", ("service: shop", "service: shop\nservise: shop"), "servise: Extra inputs"),
    ("unknown key deep down", ("failure_threshold: 3", "failure_treshold: 3"), "detection.failure_treshold"),
    ("wrong type", ("failure_threshold: 3", "failure_threshold: three"), "detection.failure_threshold"),
    ("negative number", ("rpo_seconds: 1", "rpo_seconds: -1"), "objectives.rpo_seconds"),
    ("unknown site referenced by replication", ("nhn: seoul\n", "nhn: osaka\n"), "osaka"),
    ("two primaries", ("role: standby", "role: primary"), "primary"),
    ("missing service", ("service: shop\n", ""), "service"),
    ("bad provider kind", ("kind: openstack", "kind: azure"), "provider"),
    ("missing secret file", ("file: secrets/repl.password", "file: secrets/nope.password"), "nope.password"),
    ("unset secret variable", ("file: secrets/repl.password", "env: DRORCH_CORPUS_UNSET"), "DRORCH_CORPUS_UNSET"),
    ("unknown cloud", ("cloud: nhn-lab", "cloud: nhn-typo"), "nhn-typo"),
    ("bad metrics address", ("listen: 127.0.0.1:", "listen: localhost-no-port"), "metrics.listen"),
    ("duplicate key", ("service: shop", "service: shop\nservice: shop2"), "service"),
    ("broken YAML", ("service: shop", "service: [shop"), "not valid YAML"),
    ("bad lease backend", ("backend: sqlite", "backend: zookeeper"), "state.backend"),
    ("DynamoDB lease without its table", (STATE_PATH, STATE_PATH + "  lease:\n    backend: dynamodb\n"),
     ("state.lease", "backend 'dynamodb' needs 'dynamodb: {provider: {kind: aws, region: ...}, table: ...}'")),
    ("lease TTL too short", (STATE_PATH, STATE_PATH + "  lease:\n    ttl_seconds: 1\n"),
     ("state.lease.ttl_seconds", "raise the value")),
    ("DynamoDB table at an unknown site", (ORDERS_AT_TOKYO, ORDERS_AT_TOKYO.replace("tokyo", "osaka")),
     ("data.dynamodb.tables.0.sites.osaka", "unknown site 'osaka' (known: nhn, seoul, tokyo)")),
    ("DynamoDB table at a site not on AWS", (ORDERS_AT_TOKYO, ORDERS_AT_TOKYO.replace("tokyo", "nhn")),
     ("data.dynamodb.tables.0.sites.nhn", "DynamoDB tables live in AWS regions")),
    ("DynamoDB table the site does not list", (ORDERS_AT_TOKYO, ORDERS_AT_TOKYO.replace("table", "typo")),
     ("data.dynamodb.tables.0.sites.tokyo", "not in sites.tokyo.dynamodb.tables", "add it there")),
    ("DynamoDB table at one site only", (ORDERS_AT_TOKYO, ""),
     ("data.dynamodb.tables.0", "needs at least two sites")),
    ("DynamoDB table name used twice", ("    - name: products-table\n", "    - name: orders\n"),
     ("data.dynamodb.tables.1.name", "'orders' is used twice")),
    ("semi-sync pair with an unknown site", (SEMI_SYNC_PAIR, SEMI_SYNC_PAIR.replace("tokyo", "osaka")),
     ("data.mysql.semi_sync.0", "unknown site 'osaka' (known: nhn, seoul, tokyo)")),
    ("DNS record of an unknown site", ("    nhn:\n      set_identifier: nhn\n",
                                       "    osaka:\n      set_identifier: nhn\n"),
     ("dns.sites.osaka", "unknown site 'osaka' (known: nhn, seoul, tokyo)")),
    ("admin user without its password", ("    admin_user: lab_admin\n", ""),
     ("data.mysql", "give both admin_user and admin_password, or neither")),
    ("warm capacity above active", ("      warm_count: 1\n", "      warm_count: 5\n"),
     ("sites.tokyo.compute", "active_count must be >= warm_count")),
    ("automatic failover to an unknown site",
     ("service: shop\n", "service: shop\nautomation:\n  candidates: [osaka]\n"),
     ("automation.candidates.0", "unknown site 'osaka' (known: nhn, seoul, tokyo)")),
    ("backups from an unknown site", ("  source: nhn\n", "  source: osaka\n"),
     ("backups.source", "unknown site 'osaka' (known: nhn, seoul, tokyo)")),
    ("invalid bucket name", ("bucket: drorch-lab-backups", "bucket: Drorch_Lab"),
     ("backups.store.bucket", "lowercase letters, digits, dots and hyphens")),
    ("aws:kms without a key", ("server_side_encryption: AES256", "server_side_encryption: aws:kms"),
     ("backups.store.kms_key_id", "needs kms_key_id")),
    ("bad backup schedule", ("    base: 0 2 * * *\n", "    base: 0 25 * * *\n"),
     ("backups.schedules.base", "write five fields")),
    ("no daily backup kept", ("    daily: 7\n", "    daily: 0\n"), ("backups.retention.daily", "raise the value")),
]

# Mistakes a type cannot express, caught by the cross-section checks: (case, edit of the lab's config as a
# document, what the message must name: the field and the fix)
Edit = Callable[[dict[str, Any]], object]
DOCUMENT_CASES: list[tuple[str, Edit, tuple[str, ...]]] = [
    ("a replica replicating from itself", lambda d: d["data"]["mysql"]["replicates_from"].update(nhn="nhn"),
     ("data.mysql.replicates_from.nhn", "replicates from itself; name the site it copies")),
    ("the configured primary replicating from a standby",
     lambda d: d["data"]["mysql"]["replicates_from"].update(seoul="tokyo"),
     ("data.mysql.replicates_from.seoul", "the primary replicates from nobody; remove this entry")),
    ("a replication cycle", lambda d: d["data"]["mysql"]["replicates_from"].update(tokyo="nhn", nhn="tokyo"),
     ("data.mysql.replicates_from.tokyo", "replication cycle tokyo -> nhn -> tokyo", "replicate from seoul")),
    ("a semi-sync pair of one site", lambda d: d["data"]["mysql"].update(semi_sync=[["seoul", "seoul"]]),
     ("data.mysql.semi_sync.0", "pair two different sites")),
    ("a site in two semi-sync pairs",
     lambda d: d["data"]["mysql"].update(semi_sync=[["seoul", "tokyo"], ["seoul", "nhn"]]),
     ("data.mysql.semi_sync.1", "one semi-sync partner; remove one of the pairs")),
    ("a site without a DNS record", lambda d: d["dns"]["sites"].pop("nhn"),
     ("dns.sites", "site 'nhn' has no record", "add dns.sites.nhn")),
    ("two sites with one DNS set identifier", lambda d: d["dns"]["sites"]["nhn"].update(set_identifier="tokyo"),
     ("dns.sites.nhn.set_identifier", "needs its own set identifier")),
    ("a DNS A record whose value is no address", lambda d: d["dns"]["sites"]["nhn"].update(value="nhn.example"),
     ("dns.sites.nhn.value", "not an IPv4 address")),
    ("an empty DNS record name", lambda d: d["dns"].update(record=""), ("dns.record", "give it a value")),
    ("an app URL without a scheme", lambda d: d["sites"]["nhn"]["app"].update(url="127.0.0.1:8080"),
     ("sites.nhn.app.url", "e.g. http://127.0.0.1:8080")),
    ("an empty MySQL host", lambda d: d["sites"]["nhn"]["mysql"].update(host=""),
     ("sites.nhn.mysql.host", "give it a value")),
    ("an empty etcd endpoint list", lambda d: d["state"].update(lease={"backend": "etcd", "etcd_endpoints": []}),
     ("state.lease", "needs etcd_endpoints: [http://HOST:2379")),
    ("an etcd endpoint that is no URL",
     lambda d: d["state"].update(lease={"backend": "etcd", "etcd_endpoints": ["localhost-2379"]}),
     ("state.lease.etcd_endpoints", "not an http(s) URL")),
    ("a DynamoDB block at a site not on AWS", lambda d: d["sites"]["nhn"].update(dynamodb={"tables": ["orders"]}),
     ("sites.nhn.dynamodb", "remove this block")),
    ("a VPN connection without its AWS site", lambda d: d["sites"]["nhn"]["vpn"].update(
        aws_site=None, aws_connection_id="vpn-0123"), ("sites.nhn.vpn.aws_site", "aws_connection_id needs aws_site")),
    ("a metrics port above 65535", lambda d: d["metrics"].update(listen="127.0.0.1:99999"),
     ("metrics.listen", "above 65535")),
]

PLAYBOOK_CASES: list[tuple[str, tuple[str | None, str], str]] = [
    ("unknown action", ("action: mysql.promote", "action: mysql.promot"), "mysql.promot"),
    ("unknown parameter of an action", ("action: mysql.promote\n    with: {site: \"{{ to }}\"}",
                                        "action: mysql.promote\n    with: {site: \"{{ to }}\", speed: 9}"), "speed"),
    ("duplicate step names", ("name: promote the target", "name: fence the current primary"), "used twice"),
    ("bad template", ("{{ to }}", "{{ to }"), "template"),
    ("unknown template variable", ("check: to in reachable", "check: to in reachabel"), "reachabel"),
    ("bad on_error", ("on_error: rollback", "on_error: pray"), "on_error"),
    ("negative timeout", ("timeout: 600", "timeout: -5"), "timeout"),
    ("no steps", (None, "name: empty\nsteps: []\n"), "steps"),
    ("not a mapping", (None, "- just\n- a list\n"), "playbook"),
    ("bad name", ("name: failover\n", "name: Fail Over!\n"), "name"),
    ("unknown key in a step", ("    retries: 2\n", "    retry: 2\n"), "retry"),
    ("guard without check", ("    check: to in reachable\n", ""), "check"),
]

CLI_CASES = [
    ("failover to an unknown site", ["failover", "--to", "osaka", "--yes"], "unknown site 'osaka'"),
    ("failover without --to", ["failover", "--yes"], "--to"),
    ("failover unconfirmed, no terminal", ["failover", "--to", "tokyo"], "--yes"),
    ("failover with a missing playbook", ["failover", "--to", "tokyo", "--yes", "--playbook", "/nope.yaml"],
     "nope.yaml"),
    ("plan with neither target nor playbook", ["plan"], "--to"),
    ("playbook run with a malformed --param", ["playbook", "run", str(FAILOVER), "-p", "tokyo", "--yes"], "NAME=VALUE"),
    ("playbook run with an unknown parameter", ["playbook", "run", str(FAILOVER), "-p", "to=tokyo", "-p", "x=1",
                                                "--yes"], "no parameter x"),
    ("resume an unknown run", ["resume", "no-such-run", "--yes"], "no-such-run"),
    ("report in an unknown format", ["report", "x", "--format", "pdf"], "pdf"),
    ("drill in an unknown mode", ["drill", "--to", "tokyo", "--mode", "chaos-monkey", "--yes"], "chaos-monkey"),
    ("iam-policy with a bad account", ["iam-policy", "--account-id", "12"], "12 digits"),
    ("failback to an unknown home", ["failback", "--to", "osaka", "--yes"], "osaka"),
    ("lab chaos on an unknown site", ["lab", "chaos", "kill-db", "osaka", "--dir", "{lab}"], "osaka"),
]


def run(lab: Lab, args: list[str], config: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRORCH_CONFIG": str(config or lab.layout.config)}
    env.pop("DRORCH_CORPUS_UNSET", None)
    argv = [arg.replace("{lab}", str(lab.layout.root)) for arg in args]
    return subprocess.run([sys.executable, "-m", "drorch.cli", *argv], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=60, check=False)


def test_every_bad_input_exits_2_names_the_problem_and_changes_nothing(home: Lab) -> None:
    before = estate_state(home)
    config_text = home.layout.config.read_text()
    playbook_text = FAILOVER.read_text()
    failures: list[str] = []

    def expect(case: str, done: subprocess.CompletedProcess[str], named: str | tuple[str, ...],
               file: Path | None = None) -> None:
        text = done.stdout + done.stderr
        unnamed = [part for part in ((named,) if isinstance(named, str) else named) if part not in text]
        if done.returncode != 2:
            failures.append(f"{case}: exit {done.returncode}, not 2: {text[-300:]}")
        elif unnamed:
            failures.append(f"{case}: the message does not name {unnamed[0]!r}: {text[-300:]}")
        elif file is not None and not re.search(re.escape(str(file)) + r"(:\d+)?", text):
            failures.append(f"{case}: the message does not name the file {file}: {text[-300:]}")

    for index, (case, (old, new), named) in enumerate(CONFIG_CASES):
        assert old in config_text, case
        broken = home.layout.root / f"corpus-{index}.yaml"  # beside the real one: relative paths still resolve
        broken.write_text(config_text.replace(old, new, 1))
        try:
            expect(f"config: {case}", run(home, ["status", "--fresh"], broken), named, broken)
        finally:
            broken.unlink()
    for index, (case, document_edit, named) in enumerate(DOCUMENT_CASES):
        document = yaml.safe_load(config_text)
        document_edit(document)
        broken = home.layout.root / f"corpus-document-{index}.yaml"
        broken.write_text(yaml.safe_dump(document, sort_keys=False))
        try:
            expect(f"config: {case}", run(home, ["status", "--fresh"], broken), named, broken)
        finally:
            broken.unlink()
    for index, (case, (source, replacement), named) in enumerate(PLAYBOOK_CASES):
        book = home.layout.root / f"corpus-{index}-playbook.yaml"
        if source is None:  # a whole file of its own
            book.write_text(replacement)
        else:
            assert source in playbook_text, case
            book.write_text(playbook_text.replace(source, replacement, 1))
        try:
            expect(f"playbook: {case}", run(home, ["failover", "--to", "tokyo", "--yes", "--playbook", str(book)]),
                   named, book)
        finally:
            book.unlink()
    for case, args, named in CLI_CASES:
        expect(f"cli: {case}", run(home, args), named)
    total = len(CONFIG_CASES) + len(DOCUMENT_CASES) + len(PLAYBOOK_CASES) + len(CLI_CASES)
    assert total >= 73
    assert not failures, f"{len(failures)} of {total} bad inputs were not handled:\n" + "\n".join(failures)
    assert estate_state(home) == before  # byte-for-byte: roles, data checksums, DNS, capacity
