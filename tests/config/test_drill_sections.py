"""The drill sections a real estate supplies (ground_truth, chaos, isolated): each mistake named at load time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from drorch.config import load_config
from tests.config.test_loader import VALID_YAML, load_error, write

GROUND_TRUTH: dict[str, Any] = {"load": ["my-load", "--rate", "{rate}", "--log", "{log}"],
                                "verify": ["my-verify", "{log}"]}
SCRATCH: dict[str, Any] = {
    "mysql": {"host": "10.9.9.9", "user": "scratch", "password": {"file": "secrets/drorch.password"}},
    "app_url": "http://10.9.9.9:8080"}


def with_sections(folder: Path, **sections: Any) -> Path:
    return write(folder, yaml.safe_dump({**yaml.safe_load(VALID_YAML), **sections}))


def problems(path: Path) -> str:
    return "\n".join(load_error(path).problems)


def test_the_sections_load_when_right(estate: Path) -> None:
    config = load_config(with_sections(
        estate, ground_truth=GROUND_TRUTH,
        chaos={"fault": {"fis": {"experiment_template_id": "EXT1a2b3c"}}, "heal": ["heal-it", "{site}"]},
        isolated={"scratch": {"tokyo": SCRATCH}},
        drills=[{"name": "nightly", "to": "tokyo", "mode": "isolated", "schedule": "0 3 * * *"}]))
    assert config.ground_truth is not None and config.ground_truth.load[2] == "{rate}"
    assert config.chaos is not None and config.chaos.fault.fis is not None
    assert config.isolated is not None and config.isolated.scratch["tokyo"].mysql.port == 3306
    assert config.drills[0].mode == "isolated"


@pytest.mark.parametrize(("sections", "field", "message"), [
    ({"ground_truth": {**GROUND_TRUTH, "load": ["my-load", "--rate", "{rate}"]}}, "ground_truth.load",
     "must receive {log}"),
    ({"ground_truth": {**GROUND_TRUTH, "verify": ["my-verify", "{logfile}"]}}, "ground_truth.verify",
     "unknown placeholder {logfile}"),
    ({"ground_truth": {**GROUND_TRUTH, "load": []}}, "ground_truth.load", "the program first"),
    ({"ground_truth": {**GROUND_TRUTH, "verify": ["my-verify", "{log"]}}, "ground_truth.verify", "brace"),
    ({"ground_truth": {"load": GROUND_TRUTH["load"]}}, "ground_truth.verify", "Field required"),
    ({"chaos": {"fault": {}}}, "chaos.fault", "exactly one of 'command'"),
    ({"chaos": {"fault": {"command": ["kill-it"], "fis": {"experiment_template_id": "EXT1"}}}}, "chaos.fault",
     "exactly one of 'command'"),
    ({"chaos": {"fault": {"fis": {"experiment_template_id": "EXT1", "site": "nhn"}}}}, "chaos.fault.fis.site",
     "is not on AWS"),
    ({"chaos": {"fault": {"fis": {"experiment_template_id": "EXT1", "site": "osaka"}}}}, "chaos.fault.fis.site",
     "unknown site 'osaka'"),
    ({"chaos": {"fault": {"fis": {"experiment_template_id": "not an id"}}}},
     "chaos.fault.fis.experiment_template_id", "pattern"),
    ({"chaos": {"fault": {"command": ["kill-it", "{host}"]}}}, "chaos.fault.command", "unknown placeholder {host}"),
    ({"isolated": {"scratch": {"osaka": SCRATCH}}}, "isolated.scratch.osaka", "unknown site 'osaka'"),
    ({"isolated": {"scratch": {"seoul": SCRATCH}}}, "isolated.scratch.seoul", "home primary"),
    ({"isolated": {"scratch": {"tokyo": {**SCRATCH, "mysql": {**SCRATCH["mysql"], "host": "127.10.0.3",
                                                               "port": 3308}}}}},
     "isolated.scratch.tokyo.mysql", "is nhn's database"),
    ({"isolated": {"scratch": {"tokyo": {**SCRATCH, "mysql": {**SCRATCH["mysql"], "password": {"env": "NOPE_X"}}}}}},
     "isolated.scratch.tokyo.mysql.password.env", "NOPE_X is not set"),
    ({"isolated": {"scratch": {"tokyo": {**SCRATCH, "smoke": ["smoke", "{site}"]}}}},
     "isolated.scratch.tokyo.smoke", "unknown placeholder {site}"),
    ({"drills": [{"name": "n", "to": "tokyo", "mode": "chaos", "schedule": "0 3 * * *"}]}, "drills.0.mode",
     "'switchover' or 'isolated'"),
])
def test_each_mistake_names_its_field(estate: Path, sections: dict[str, Any], field: str,
                                      message: str) -> None:
    found = problems(with_sections(estate, **sections))
    assert f": {field}: " in found and message in found, found
