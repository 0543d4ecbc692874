"""`mysql.promote` itself refuses, changing nothing, while another site's database is writable: called as an
action, in a playbook run whose guard `--force` overrode, and in a resume that skips a fence lifted since."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from drorch.engine.actions import dns
from drorch.engine.catalogue import ActionContext, catalogue
from drorch.errors import RefusedForSafety
from drorch.lab.control import Lab
from drorch.state.backends import open_journal
from drorch.state.journal import StepRecord
from tests.helpers import drorch_cli, estate_state, follows, writable_sites

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"

# a team's playbook whose only guard against a writable old primary is overridable: --force passes it
UNFENCED = """\
name: promote-without-fencing
parameters:
  to: {default: tokyo}
  from: {default: "{{ primary }}"}
guards:
  - name: the current primary is fenced
    check: from not in writable
    message: "{{ from }} is still writable"
    overridable: true
steps:
  - name: promote the target
    action: mysql.promote
    with: {site: "{{ to }}"}
    on_error: rollback
"""


def assert_tokyo_untouched(lab: Lab) -> None:
    """seoul still the one writable database, tokyo a read-only replica of it, DNS on seoul."""
    assert writable_sites(lab) == ["seoul"]
    assert follows(lab, "tokyo", "seoul")
    assert dns.active_sites(lab.estate)["PRIMARY"] == "seoul"


def test_the_promote_action_refuses_beside_a_writable_primary_and_its_plan_says_so(home: Lab) -> None:
    before = estate_state(home)
    spec = catalogue()["mysql.promote"]
    params = spec.params.model_validate({"site": "tokyo"})
    assert spec.plan is not None
    planned = spec.plan(ActionContext(home.estate, {}, dry_run=True), params)
    assert planned[-1] == ("tokyo database: promoted only if seoul (writable now) is read-only by then, else refused "
                           "even under --force: never two writable databases")
    # `reachable` as a run observed it without seoul: the check asks every database afresh all the same
    ctx = ActionContext(home.estate, {"reachable": ["tokyo", "nhn"]})
    with pytest.raises(RefusedForSafety) as refused:
        spec.run(ctx, params)
    assert "cannot promote tokyo: seoul is writable" in str(refused.value)
    assert "Nothing was changed" in str(refused.value)
    assert_tokyo_untouched(home)
    assert estate_state(home) == before


def test_force_overrides_a_guard_but_never_the_promote_refusal(home: Lab, tmp_path: Path) -> None:
    book = tmp_path / "promote-without-fencing.yaml"
    book.write_text(UNFENCED)
    before = estate_state(home)
    guarded = drorch_cli(home.layout.config, "playbook", "run", str(book), "--yes")
    assert guarded.returncode == 3 and "seoul is still writable" in guarded.stderr
    forced = drorch_cli(home.layout.config, "playbook", "run", str(book), "--yes", "--force",
                        "--confirm-force", "promote-without-fencing", "--output", "json")
    assert forced.returncode == 3, forced.stderr
    result = json.loads(forced.stdout)
    assert result["overridden_guards"] == ["the current primary is fenced"]
    assert result["status"] == "rolled_back" and "cannot promote tokyo: seoul is writable" in result["error"]
    assert [(s["name"], s["status"]) for s in result["steps"]] == [("promote the target", "failed")]
    assert_tokyo_untouched(home)
    assert estate_state(home) == before


def test_a_resume_that_skips_a_lifted_fence_is_refused_at_promotion(home: Lab) -> None:
    """A failover stopped after fencing seoul; someone made seoul writable again by hand before the resume.

    The resume skips the fence (done in the old run) and reaches the promotion: the step itself refuses.
    """
    source = PLAYBOOKS / "failover-to-tokyo.yaml"
    journal = open_journal(home.config)
    run_id = f"promote{int(time.time() * 1000) % 10**8:08d}"
    journal.start_run(run_id, "failover", time.time(), {
        "playbook": "failover-to-tokyo", "source": str(source), "parameters": {"to": "tokyo", "from": "seoul"},
        "trigger": "manual"})
    names = ["approve the failover", "carry DynamoDB changes into tokyo", "check DynamoDB replication into tokyo",
             "measure what DynamoDB would lose", "scale the Fargate service to active", "fence the current primary",
             "wait until tokyo applied everything the primary wrote", "wait until tokyo applied everything it received",
             "carry the last DynamoDB changes into tokyo"]
    for index, name in enumerate(names):
        journal.record_step(run_id, StepRecord(index, name, "succeeded", time.time(), 0.0))
    journal.finish_run(run_id, "failed", time.time(), {
        "playbook": "failover-to-tokyo", "source": str(source), "parameters": {"to": "tokyo", "from": "seoul"},
        "trigger": "manual", "error": "test fixture: stopped before the promotion"})
    assert writable_sites(home) == ["seoul"]  # the fence lifted by hand: seoul took writes again
    resumed = drorch_cli(home.layout.config, "resume", run_id, "--yes", "--output", "json", timeout=120)
    assert resumed.returncode == 3, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["status"] == "rolled_back" and "cannot promote tokyo: seoul is writable" in result["error"]
    statuses = {step["name"]: step["status"] for step in result["steps"]}
    assert statuses["fence the current primary"] == "skipped" and statuses["promote tokyo"] == "failed"
    assert_tokyo_untouched(home)
