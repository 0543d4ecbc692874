"""drorch.config: loading drorch.yaml, the operator-facing error lines, and secrets.

Every error case edits one known-good YAML document and checks the problem line
``file:line: field.path: message`` against the line the offending key really is on
(found by searching the YAML text, independently of drorch's own line map).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from drorch.config import Config, find_config_path, load_config
from drorch.config.base import SecretRef
from drorch.config.secrets import read_secret
from drorch.errors import InvalidInput

DRORCH_SECRET = "s3cr3t-drorch-pw"
REPL_SECRET = "s3cr3t-repl-pw"

# Modelled on drorch.lab.files.config_document: seoul (EKS) primary, tokyo (ECS) and nhn (OpenStack) standbys.
VALID_YAML = """\
# Written by `drorch lab up`: the lab estate, in the same schema a real estate uses.
service: shop
objectives:
  rto_seconds: 30
  rpo_seconds: 1
sites:
  seoul:
    role: primary
    provider:
      kind: aws
      region: ap-northeast-2
      endpoint_url: http://127.0.0.1:5000
      credentials_file: aws-credentials
    app:
      url: http://127.10.0.1:8080
    mysql:
      host: 127.10.0.1
      port: 3306
      user: drorch
      password:
        file: secrets/drorch.password
      flavor: mariadb
      tls: disabled
    compute:
      kind: eks
      cluster: eks-prod
      nodegroups:
        app-nodes: 4
  tokyo:
    role: standby
    provider:
      kind: aws
      region: ap-northeast-1
      endpoint_url: http://127.0.0.1:5000
      credentials_file: aws-credentials
    app:
      url: http://127.10.0.2:8080
    mysql:
      host: 127.10.0.2
      port: 3307
      user: drorch
      password:
        file: secrets/drorch.password
      flavor: mariadb
      tls: disabled
    compute:
      kind: ecs
      cluster: dr-ecs-cluster
      service: dr-fargate-service
      warm_count: 1
      active_count: 4
  nhn:
    role: standby
    provider:
      kind: openstack
      cloud: nhn-lab
      clouds_file: clouds.yaml
      region: KR1
    app:
      url: http://127.10.0.3:8080
    mysql:
      host: 127.10.0.3
      port: 3308
      user: drorch
      password:
        file: secrets/drorch.password
      flavor: mariadb
      tls: disabled
    compute:
      kind: openstack
      servers:
        - nhn-app-1
        - nhn-app-2
      nks_cluster: nks-prod
      nks_nodegroup: default-worker
      nks_active_count: 3
dns:
  provider:
    kind: aws
    region: us-east-1
    endpoint_url: http://127.0.0.1:5000
    credentials_file: aws-credentials
  zone_id: Z0123456789ABCDEFGHIJ
  record: app.lab.drorch.example.
  type: A
  ttl: 1
  verify_via: lab-resolver
  app_port: 8080
  sites:
    seoul:
      set_identifier: seoul
      value: 127.10.0.1
      health_check_id: hc-seoul
    tokyo:
      set_identifier: tokyo
      value: 127.10.0.2
      health_check_id: hc-tokyo
    nhn:
      set_identifier: nhn
      value: 127.10.0.3
      health_check_id: hc-nhn
data:
  mysql:
    replicates_from:
      tokyo: seoul
      nhn: seoul
    semi_sync:
      - [seoul, tokyo]
    replication_user: repl
    replication_password:
      file: secrets/repl.password
state:
  backend: sqlite
  path: state/drorch.db
"""

PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<field>\S+): (?P<message>.+)$")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    field: str
    message: str


def parse_problem(text: str) -> Problem:
    match = PROBLEM.match(text)
    assert match is not None, f"problem line not in 'file:line: field: message' form: {text!r}"
    return Problem(match["file"], int(match["line"]), match["field"], match["message"])


def edit(text: str, old: str, new: str) -> str:
    """Replace ``old`` (which must occur exactly once) so a test never edits the wrong spot silently."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def line_no(text: str, needle: str, after: str | None = None) -> int:
    """1-based line of the only line containing ``needle`` (after the line containing ``after``, if given)."""
    lines = text.splitlines()
    start = 0
    if after is not None:
        start = next(i for i, line in enumerate(lines) if after in line) + 1
    hits = [i + 1 for i, line in enumerate(lines) if i >= start and needle in line]
    assert hits, f"{needle!r} not found"
    return hits[0]


def write(folder: Path, text: str, name: str = "drorch.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        load_config(path)
    assert info.value.exit_code == 2
    return info.value


def only_problem(path: Path) -> Problem:
    error = load_error(path)
    assert len(error.problems) == 1, error.problems
    problem = parse_problem(error.problems[0])
    assert problem.file == str(path)
    return problem


# --- a valid config -------------------------------------------------------------------------------------------


def test_valid_config_loads(estate: Path) -> None:
    config = load_config(write(estate, VALID_YAML))

    assert config.service == "shop"
    assert list(config.sites) == ["seoul", "tokyo", "nhn"]
    assert config.primary_site == "seoul"
    assert config.objectives.rto_seconds == 30.0
    assert config.objectives.rpo_seconds == 1.0
    assert config.sites["tokyo"].mysql.port == 3307
    assert config.sites["seoul"].provider.kind == "aws"
    assert config.sites["nhn"].provider.kind == "openstack"
    assert config.sites["tokyo"].compute is not None and config.sites["tokyo"].compute.kind == "ecs"
    assert config.dns.sites["nhn"].value == "127.10.0.3"
    assert config.data.mysql.replicates_from == {"tokyo": "seoul", "nhn": "seoul"}
    assert config.data.mysql.semi_sync == [("seoul", "tokyo")]
    assert config.site("nhn") is config.sites["nhn"]


def test_defaults_apply_when_optional_sections_are_left_out(estate: Path) -> None:
    text = edit(VALID_YAML, "objectives:\n  rto_seconds: 30\n  rpo_seconds: 1\n", "")
    text = edit(text, "state:\n  backend: sqlite\n  path: state/drorch.db\n", "")
    config = load_config(write(estate, text))

    assert config.objectives.rto_seconds == 120.0
    assert config.objectives.rpo_seconds == 2.0
    assert config.state.path == Path("state/drorch.db")


def test_primary_site_follows_the_role_not_the_order(estate: Path) -> None:
    text = edit(VALID_YAML, "  seoul:\n    role: primary", "  seoul:\n    role: standby")
    text = edit(text, "  tokyo:\n    role: standby", "  tokyo:\n    role: primary")
    text = edit(text, "      tokyo: seoul\n", "      seoul: tokyo\n")  # the primary replicates from nobody
    assert load_config(write(estate, text)).primary_site == "tokyo"


def test_relative_paths_resolve_against_the_config_folder(estate: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = estate / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the current directory must not matter

    config = load_config(write(estate, VALID_YAML))

    assert config.source_path == estate / "drorch.yaml"
    assert config.resolve_path(config.state.path) == estate / "state" / "drorch.db"
    assert config.resolve_path(Path("secrets/repl.password")) == estate / "secrets" / "repl.password"
    absolute = Path("/etc/drorch/ca.pem")
    assert config.resolve_path(absolute) == absolute


def test_relative_config_path_is_made_absolute(estate: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(estate, VALID_YAML)
    monkeypatch.chdir(estate)
    config = load_config(Path("drorch.yaml"))
    assert config.source_path is not None and config.source_path.is_absolute()
    monkeypatch.chdir("/")
    assert config.resolve_path(Path("secrets/drorch.password")).read_text().strip() == DRORCH_SECRET


def test_resolve_path_without_source_returns_path_unchanged(estate: Path) -> None:
    config = load_config(write(estate, VALID_YAML)).model_copy(update={"source_path": None})
    assert config.resolve_path(Path("state/drorch.db")) == Path("state/drorch.db")


def test_config_object_never_holds_secret_values(estate: Path) -> None:
    config = load_config(write(estate, VALID_YAML))
    for text in (repr(config), str(config), config.model_dump_json()):
        assert DRORCH_SECRET not in text
        assert REPL_SECRET not in text


def test_config_is_frozen(estate: Path) -> None:
    config = load_config(write(estate, VALID_YAML))
    with pytest.raises(ValueError, match="frozen"):
        config.service = "other"


def test_site_lookup_of_unknown_site_is_invalid_input(estate: Path) -> None:
    config = load_config(write(estate, VALID_YAML))
    with pytest.raises(InvalidInput, match=r"unknown site 'osaka'.*nhn, seoul, tokyo"):
        config.site("osaka")


# --- schema errors --------------------------------------------------------------------------------------------


def test_unknown_top_level_key(estate: Path) -> None:
    text = VALID_YAML + "objectivs:\n  rto_seconds: 5\n"
    path = write(estate, text)
    problem = only_problem(path)
    assert problem.line == line_no(text, "objectivs:")
    assert problem.field == "objectivs"
    assert "Extra inputs are not permitted" in problem.message
    assert "unknown key" in problem.message and "spelling" in problem.message


def test_unknown_key_nested_in_a_site(estate: Path) -> None:
    text = edit(VALID_YAML, "      port: 3307\n", "      port: 3307\n      pasword: x\n")
    path = write(estate, text)
    problem = only_problem(path)
    assert problem.line == line_no(text, "pasword:")
    assert problem.field == "sites.tokyo.mysql.pasword"
    assert "unknown key" in problem.message


def test_typo_of_a_required_key_reports_both_the_typo_and_the_missing_field(estate: Path) -> None:
    text = edit(VALID_YAML, "service: shop", "servce: shop")
    error = load_error(write(estate, text))
    problems = sorted((parse_problem(p) for p in error.problems), key=lambda p: p.field)
    assert [p.field for p in problems] == ["servce", "service"]
    assert problems[0].line == line_no(text, "servce:")
    assert "unknown key" in problems[0].message
    assert "required field" in problems[1].message


def test_unknown_key_in_a_provider_drops_only_the_union_tag(estate: Path) -> None:
    text = edit(VALID_YAML, "      cloud: nhn-lab\n", "      cloud: nhn-lab\n      projct: x\n")
    problem = only_problem(write(estate, text))
    assert problem.field == "sites.nhn.provider.projct"  # not sites.nhn.provider.openstack.projct
    assert problem.line == line_no(text, "projct:")


def test_unknown_key_in_dns_provider(estate: Path) -> None:
    text = edit(VALID_YAML, "    region: us-east-1\n", "    region: us-east-1\n    profle: ops\n")
    problem = only_problem(write(estate, text))
    assert problem.field == "dns.provider.profle"
    assert problem.line == line_no(text, "profle:")


def test_wrong_type(estate: Path) -> None:
    text = edit(VALID_YAML, "      port: 3306\n", '      port: "abc"\n')
    problem = only_problem(write(estate, text))
    assert problem.line == line_no(text, 'port: "abc"')
    assert problem.field == "sites.seoul.mysql.port"
    assert "valid integer" in problem.message


def test_out_of_range_value(estate: Path) -> None:
    text = edit(VALID_YAML, "      port: 3308\n", "      port: 70000\n")
    problem = only_problem(write(estate, text))
    assert problem.line == line_no(text, "port: 70000")
    assert problem.field == "sites.nhn.mysql.port"
    assert "less than 65536" in problem.message


def test_missing_required_field_points_at_its_parent(estate: Path) -> None:
    text = edit(VALID_YAML, "      host: 127.10.0.2\n", "")
    problem = only_problem(write(estate, text))
    assert problem.field == "sites.tokyo.mysql.host"
    assert problem.line == line_no(text, "mysql:", after="  tokyo:")
    assert "Field required" in problem.message and "required field: add it" in problem.message


def test_unknown_provider_kind(estate: Path) -> None:
    text = edit(VALID_YAML, "      kind: openstack\n      cloud:", "      kind: gcp\n      cloud:")
    problem = only_problem(write(estate, text))
    assert problem.field == "sites.nhn.provider"
    assert problem.line == line_no(text, "provider:", after="  nhn:")
    assert "'gcp'" in problem.message and "'aws', 'openstack'" in problem.message
    assert "set 'kind' to one of the listed values" in problem.message


def test_provider_without_kind(estate: Path) -> None:
    text = edit(VALID_YAML, "      kind: openstack\n      cloud:", "      cloud:")
    problem = only_problem(write(estate, text))
    assert problem.field == "sites.nhn.provider"
    assert problem.line == line_no(text, "provider:", after="  nhn:")
    assert "add a 'kind' field" in problem.message


def test_ecs_active_count_below_warm_count(estate: Path) -> None:
    text = edit(VALID_YAML, "      warm_count: 1\n      active_count: 4", "      warm_count: 5\n      active_count: 4")
    problem = only_problem(write(estate, text))
    assert problem.field == "sites.tokyo.compute"
    assert problem.line == line_no(text, "compute:", after="  tokyo:")
    assert "active_count must be >= warm_count" in problem.message


def test_password_with_both_env_and_file(estate: Path) -> None:
    text = edit(VALID_YAML, "      file: secrets/repl.password\n",
                "      file: secrets/repl.password\n      env: REPL\n")
    problem = only_problem(write(estate, text))
    assert problem.field == "data.mysql.replication_password"
    assert problem.line == line_no(text, "replication_password:")
    assert "exactly one of 'env'" in problem.message and "'file'" in problem.message


def test_password_with_neither_env_nor_file(estate: Path) -> None:
    text = edit(VALID_YAML, "replication_password:\n      file: secrets/repl.password\n", "replication_password: {}\n")
    problem = only_problem(write(estate, text))
    assert problem.field == "data.mysql.replication_password"
    assert "exactly one of" in problem.message


def test_inline_password_is_rejected_without_echoing_it(estate: Path) -> None:
    text = edit(VALID_YAML, "    replication_password:\n      file: secrets/repl.password\n",
                "    replication_password: hunter2-inline\n")
    error = load_error(write(estate, text))
    problem = parse_problem(error.problems[0])
    assert len(error.problems) == 1
    assert problem.field == "data.mysql.replication_password"
    assert problem.line == line_no(text, "replication_password:")
    assert "hunter2-inline" not in str(error)


def test_several_schema_problems_are_reported_at_once(estate: Path) -> None:
    text = edit(VALID_YAML, "service: shop\n", "service: shop\nservise: typo\n")
    text = edit(text, "      port: 3306\n", '      port: "abc"\n')
    text = edit(text, "      kind: openstack\n      cloud:", "      kind: gcp\n      cloud:")
    error = load_error(write(estate, text))
    problems = {parse_problem(p).field: parse_problem(p) for p in error.problems}
    assert set(problems) == {"servise", "sites.seoul.mysql.port", "sites.nhn.provider"}
    assert problems["servise"].line == line_no(text, "servise:")
    assert problems["sites.seoul.mysql.port"].line == line_no(text, 'port: "abc"')
    assert problems["sites.nhn.provider"].line == line_no(text, "provider:", after="  nhn:")
    assert "3 problem(s)" in str(error).splitlines()[0]


def test_duplicate_key_is_rejected(estate: Path) -> None:
    text = edit(VALID_YAML, "  ttl: 1\n", "  ttl: 1\n  ttl: 300\n")
    with pytest.raises(InvalidInput):
        load_config(write(estate, text))


# --- reference errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "field", "line_marker", "message"),
    [
        ("    nhn:\n      set_identifier: nhn", "    nhm:\n      set_identifier: nhn", "dns.sites.nhm", "nhm:",
         "unknown site 'nhm' (known: nhn, seoul, tokyo)"),
        ("      nhn: seoul\n", "      osaka: seoul\n", "data.mysql.replicates_from.osaka", "osaka: seoul",
         "unknown site 'osaka'"),
        ("      nhn: seoul\n", "      nhn: seol\n", "data.mysql.replicates_from.nhn", "nhn: seol",
         "unknown site 'seol' (known: nhn, seoul, tokyo)"),
        ("      - [seoul, tokyo]\n", "      - [seoul, tokyo]\n      - [seoul, tokio]\n", "data.mysql.semi_sync.1",
         "[seoul, tokio]", "unknown site 'tokio'"),
    ],
    ids=["dns-sites", "replica", "source", "semi-sync"],
)
def test_unknown_site_reference(estate: Path, old: str, new: str, field: str, line_marker: str, message: str) -> None:
    text = edit(VALID_YAML, old, new)
    problem = only_problem(write(estate, text))
    assert problem.field == field
    assert problem.line == line_no(text, line_marker)
    assert message in problem.message


def test_two_primaries(estate: Path) -> None:
    text = edit(VALID_YAML, "  tokyo:\n    role: standby", "  tokyo:\n    role: primary")
    problem = only_problem(write(estate, text))
    assert problem.field == "sites"
    assert problem.line == line_no(text, "sites:")
    assert "exactly one site must have role 'primary', found 2" in problem.message


def test_no_primary(estate: Path) -> None:
    text = edit(VALID_YAML, "  seoul:\n    role: primary", "  seoul:\n    role: standby")
    problem = only_problem(write(estate, text))
    assert problem.field == "sites"
    assert "found 0" in problem.message


def test_secret_file_missing(estate: Path) -> None:
    (estate / "secrets" / "repl.password").unlink()
    path = write(estate, VALID_YAML)
    problem = only_problem(path)
    assert problem.field == "data.mysql.replication_password.file"
    assert problem.line == line_no(VALID_YAML, "file: secrets/repl.password")
    assert str(estate / "secrets" / "repl.password") in problem.message  # resolved against the config folder
    assert "missing or unreadable" in problem.message


def test_secret_env_var_missing(estate: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRORCH_TEST_REPL_PASSWORD", raising=False)
    text = edit(VALID_YAML, "      file: secrets/repl.password\n", "      env: DRORCH_TEST_REPL_PASSWORD\n")
    problem = only_problem(write(estate, text))
    assert problem.field == "data.mysql.replication_password.env"
    assert problem.line == line_no(text, "env: DRORCH_TEST_REPL_PASSWORD")
    assert "DRORCH_TEST_REPL_PASSWORD is not set" in problem.message


def test_secret_env_var_present_loads(estate: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRORCH_TEST_REPL_PASSWORD", "from-env")
    text = edit(VALID_YAML, "      file: secrets/repl.password\n", "      env: DRORCH_TEST_REPL_PASSWORD\n")
    config = load_config(write(estate, text))
    assert config.data.mysql.replication_password == SecretRef(env="DRORCH_TEST_REPL_PASSWORD")


def test_several_reference_and_secret_problems_are_reported_at_once(estate: Path) -> None:
    (estate / "secrets" / "drorch.password").unlink()  # used by all three sites
    text = edit(VALID_YAML, "  tokyo:\n    role: standby", "  tokyo:\n    role: primary")
    text = edit(text, "    nhn:\n      set_identifier: nhn", "    nhm:\n      set_identifier: nhn")
    error = load_error(write(estate, text))
    problems = [parse_problem(p) for p in error.problems]
    assert [p.field for p in problems] == [
        "sites",
        "dns.sites.nhm",
        "sites.seoul.mysql.password.file",
        "sites.tokyo.mysql.password.file",
        "sites.nhn.mysql.password.file",
    ]
    secret_lines = [i + 1 for i, line in enumerate(text.splitlines()) if "file: secrets/drorch.password" in line]
    assert [p.line for p in problems[2:]] == secret_lines
    assert problems[1].line == line_no(text, "nhm:")
    assert "5 problem(s)" in str(error).splitlines()[0]


# --- file-level errors ----------------------------------------------------------------------------------------


def test_broken_yaml_syntax_names_the_line(estate: Path) -> None:
    text = edit(VALID_YAML, "  record: app.lab.drorch.example.\n", "  record: app: lab\n")
    path = write(estate, text)
    error = load_error(path)
    assert error.problems == [f"{path}:{line_no(text, 'record: app: lab')}: not valid YAML: "
                              "mapping values are not allowed here"]


def test_unclosed_flow_sequence_is_invalid_yaml(estate: Path) -> None:
    text = edit(VALID_YAML, "      - [seoul, tokyo]\n", "      - [seoul, tokyo\n")
    error = load_error(write(estate, text))
    assert len(error.problems) == 1
    assert "not valid YAML" in error.problems[0]


def test_yaml_list_is_not_a_config(estate: Path) -> None:
    path = write(estate, "- service: shop\n- sites: {}\n")
    error = load_error(path)
    assert error.problems == [f"{path}:1: the config must be a mapping of keys (service, sites, dns, data...)"]


def test_empty_file_is_not_a_config(estate: Path) -> None:
    path = write(estate, "# nothing here\n")
    error = load_error(path)
    assert len(error.problems) == 1
    assert "must be a mapping" in error.problems[0]


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    error = load_error(path)
    assert len(error.problems) == 1
    message = error.problems[0]
    assert message.startswith(f"{path}: cannot read config")
    assert "No such file or directory" in message
    assert "--config" in message and "$DRORCH_CONFIG" in message


# --- find_config_path -----------------------------------------------------------------------------------------


def test_explicit_config_beats_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DRORCH_CONFIG", str(tmp_path / "from-env.yaml"))
    monkeypatch.chdir(tmp_path)
    write(tmp_path, VALID_YAML)
    assert find_config_path(Path("/etc/explicit.yaml")) == Path("/etc/explicit.yaml")


def test_environment_beats_current_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DRORCH_CONFIG", str(tmp_path / "from-env.yaml"))
    monkeypatch.chdir(tmp_path)
    write(tmp_path, VALID_YAML)
    assert find_config_path(None) == tmp_path / "from-env.yaml"


def test_current_directory_is_the_fallback(monkeypatch: pytest.MonkeyPatch, estate: Path) -> None:
    monkeypatch.delenv("DRORCH_CONFIG", raising=False)
    monkeypatch.chdir(estate)
    write(estate, VALID_YAML)
    path = find_config_path(None)
    assert path == Path("drorch.yaml")
    assert load_config(path).source_path == estate / "drorch.yaml"


def test_empty_environment_variable_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRORCH_CONFIG", "")
    assert find_config_path(None) == Path("drorch.yaml")


# --- secrets --------------------------------------------------------------------------------------------------


@pytest.fixture()
def config(estate: Path) -> Config:
    return load_config(write(estate, VALID_YAML))


def test_read_secret_from_file_strips_the_newline(config: Config) -> None:
    ref = config.data.mysql.replication_password
    assert read_secret(config, ref, "data.mysql.replication_password") == REPL_SECRET


def test_read_secret_from_file_is_relative_to_config_not_cwd(
    config: Config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir("/")
    ref = config.sites["nhn"].mysql.password
    assert read_secret(config, ref, "sites.nhn.mysql.password") == DRORCH_SECRET


def test_read_secret_from_env(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRORCH_TEST_SECRET", "env-value")
    assert read_secret(config, SecretRef(env="DRORCH_TEST_SECRET"), "sites.seoul.mysql.password") == "env-value"


def test_read_secret_env_missing_names_field_and_variable(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRORCH_TEST_SECRET", raising=False)
    with pytest.raises(InvalidInput) as info:
        read_secret(config, SecretRef(env="DRORCH_TEST_SECRET"), "sites.seoul.mysql.password")
    assert info.value.exit_code == 2
    message = str(info.value)
    assert message.startswith("sites.seoul.mysql.password: ")
    assert "DRORCH_TEST_SECRET is not set" in message


def test_read_secret_file_missing_names_field_not_value(config: Config, estate: Path) -> None:
    secret_file = estate / "secrets" / "drorch.password"
    secret_file.unlink()
    with pytest.raises(InvalidInput) as info:
        read_secret(config, config.sites["seoul"].mysql.password, "sites.seoul.mysql.password")
    message = str(info.value)
    assert message.startswith("sites.seoul.mysql.password: cannot read secret file")
    assert str(secret_file) in message
    assert DRORCH_SECRET not in message


def test_read_secret_unreadable_path_never_contains_a_value(config: Config, estate: Path) -> None:
    # A directory where the file should be: opening it fails, and no content can end up in the message.
    target = estate / "secrets" / "as-dir.password"
    target.mkdir()
    (target / "inner").write_text(DRORCH_SECRET)
    with pytest.raises(InvalidInput) as info:
        read_secret(config, SecretRef(file=Path("secrets/as-dir.password")), "data.mysql.replication_password")
    message = str(info.value)
    assert message.startswith("data.mysql.replication_password: cannot read secret file")
    assert DRORCH_SECRET not in message


def test_secret_files_are_checked_for_readability(estate: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can read a mode-000 file")
    (estate / "secrets" / "repl.password").chmod(0)
    problem = only_problem(write(estate, VALID_YAML))
    assert problem.field == "data.mysql.replication_password.file"
    assert "missing or unreadable" in problem.message
