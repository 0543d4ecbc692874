"""The bad-input corpus: malformed configs, playbooks and command lines, run against the live lab.

Every case must exit 2 with a message that names what is wrong (the file and field for files),
and the lab's state — database roles and data, DNS records, capacity — must be exactly what it
was before the corpus ran.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from drorch.lab.control import Lab
from tests.helpers import estate_state

FAILOVER = Path(__file__).resolve().parents[2] / "playbooks" / "failover.yaml"

# (case, edit of the lab's drorch.yaml: (old text, new text), what the message must name)
CONFIG_CASES = [
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

    def expect(case: str, done: subprocess.CompletedProcess[str], named: str, file: Path | None = None) -> None:
        text = done.stdout + done.stderr
        if done.returncode != 2:
            failures.append(f"{case}: exit {done.returncode}, not 2: {text[-300:]}")
        elif named not in text:
            failures.append(f"{case}: the message does not name {named!r}: {text[-300:]}")
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
    total = len(CONFIG_CASES) + len(PLAYBOOK_CASES) + len(CLI_CASES)
    assert total >= 40
    assert not failures, f"{len(failures)} of {total} bad inputs were not handled:\n" + "\n".join(failures)
    assert estate_state(home) == before  # byte-for-byte: roles, data checksums, DNS, capacity

