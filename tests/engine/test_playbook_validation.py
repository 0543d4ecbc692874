"""Playbook validation: every problem reported at once, with file:line, field and a fix; exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drorch.engine.playbook.loader import load_playbook
from drorch.engine.playbook.model import Playbook
from drorch.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = sorted((ROOT / "playbooks").glob("*.yaml"))

GOOD = """\
name: tiny
parameters:
  to: {description: target}
steps:
  - name: wait
    action: control.sleep
    with: {seconds: 0}
  - name: promote
    action: mysql.promote
    with: {site: "{{ to }}"}
"""


def test_shipped_playbooks_are_valid() -> None:
    assert PLAYBOOKS
    for path in PLAYBOOKS:
        assert load_playbook(path).name == path.stem


def test_committed_json_schema_matches_the_model() -> None:
    committed = json.loads((ROOT / "playbooks" / "playbook.schema.json").read_text())
    assert committed == Playbook.model_json_schema(by_alias=True), "regenerate: drorch playbook schema > ..."


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "book.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInput) as caught:
        load_playbook(path)
    assert caught.value.exit_code == 2
    return caught.value.problems


def _line(text: str, marker: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if marker in line)


@pytest.mark.parametrize(
    ("old", "new", "field", "marker", "message"),
    [
        ("action: mysql.promote", "action: mysql.promot", "steps.1.action", "mysql.promot",
         "unknown action 'mysql.promot' (did you mean 'mysql.promote'?)"),
        ("with: {seconds: 0}", "with: {seconds: 0, minutes: 1}", "steps.0.with.minutes", "minutes",
         "'control.sleep' has no parameter 'minutes'"),
        ("with: {seconds: 0}", "with: {}", "steps.0.with", "with: {}", "needs parameter 'seconds'"),
        ("with: {seconds: 0}", "with: {seconds: lots}", "steps.0.with.seconds", "lots", "valid number"),
        ('"{{ to }}"', '"{{ too }}"', "steps.1.with.site", "too",
         "unknown variable 'too' in template (did you mean 'to'?)"),
        ('"{{ to }}"', '"{{ to }"', "steps.1.with.site", "{{ to }", "bad template"),
        ("name: promote", "name: wait  # again", "steps.1.name", "# again", "step name 'wait' is used twice"),
        ("    with: {seconds: 0}\n", "    with: {seconds: 0}\n    timeout: soon\n", "steps.0.timeout", "soon",
         "valid number"),
        ("parameters:", "paramters:", "paramters", "paramters", "unknown key"),
    ],
    ids=["unknown-action", "unknown-param", "missing-param", "literal-type", "unknown-variable", "bad-template",
         "duplicate-name", "bad-timeout", "unknown-key"],
)
def test_each_problem_names_file_line_field_and_fix(
    tmp_path: Path, old: str, new: str, field: str, marker: str, message: str
) -> None:
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    problems = _problems(tmp_path, text)
    expected = f"{tmp_path / 'book.yaml'}:{_line(text, marker)}: {field}: "
    assert any(p.startswith(expected) and message in p for p in problems), problems


def test_all_problems_at_once_and_broken_yaml(tmp_path: Path) -> None:
    text = GOOD.replace("mysql.promote", "mysql.promot").replace("seconds: 0", "seconds: 0, minutes: 1")
    assert len(_problems(tmp_path, text)) == 2
    broken = _problems(tmp_path, GOOD + "  - [unclosed\n")
    assert len(broken) == 1 and "not valid YAML" in broken[0]


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("mysql.promote", "mysql.fense"))
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)

    def validate(*files: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "drorch.cli", "playbook", "validate", *map(str, files)],
                              capture_output=True, text=True, timeout=60, check=False)

    assert validate(good, *PLAYBOOKS).returncode == 0
    result = validate(good, bad)
    assert result.returncode == 2 and f"{bad}:" in result.stderr and "mysql.fense" in result.stderr
    listing = subprocess.run([sys.executable, "-m", "drorch.cli", "playbook", "actions", "--output", "json"],
                             capture_output=True, text=True, timeout=60, check=True)
    actions = json.loads(listing.stdout)["actions"]
    assert actions["mysql.fence"]["parameters"]["site"]["required"] is True
    assert actions["mysql.wait_caught_up"]["mutating"] is False


def test_committed_runbooks_match_their_playbooks() -> None:
    from drorch.engine.playbook.runbook import render

    for path in PLAYBOOKS:
        runbook = ROOT / "runbooks" / f"playbook-{path.stem}.md"
        assert runbook.exists(), f"missing {runbook}: drorch runbook render {path} --out-dir runbooks"
        expected = render(load_playbook(path), f"playbooks/{path.name}")
        assert runbook.read_text() == expected, f"stale {runbook}: drorch runbook render {path} --out-dir runbooks"
