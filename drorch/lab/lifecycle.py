"""``lab up``, ``lab down`` and ``lab status``: the whole estate as local processes.

Start-up is all-or-nothing: if any part fails, everything already started is
stopped by PID before the error is raised, so a failed ``lab up`` never leaves a
half-started lab behind.

``lab up --vpn`` puts the NHN site behind a real strongSwan VPN (drorch.lab.vpn,
in ``DIR/vpn``): the AWS sites (seoul, tokyo) take addresses in the VPN's AWS
subnet on the host's end of the host link, instead of the lab's 127.X.Y.0/24,
and the NHN site's MariaDB and app run inside the VPN's nhn network namespace on
an address of the NHN subnet. Everything between them — nhn replicating from
seoul, drorch and the resolver reaching nhn from the host — goes through a
tunnel, and stops when both tunnels are down. ``lab down`` stops the processes
(those in the namespace included), then the VPN, which removes the namespaces.
"""

from __future__ import annotations

import functools
import json
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drorch.errors import InvalidInput, OperationFailed
from drorch.lab import files, mariadb, processes, vpn
from drorch.lab.layout import HOME_PRIMARY, MARKER, SITE_HOSTS, SITE_REGIONS, SITES, LabLayout
from drorch.lab.mariadb import Accounts
from drorch.lab.ports import free_lab_subnet, free_port, wait_listening
from drorch.lab.state import LabState, SiteState

START_TIMEOUT = 60.0
# Stop order: clients of a service go before the service.
_STOP_ORDER = ("app-", "mariadb-", "aws", "openstack")


@dataclass(frozen=True)
class UpResult:
    layout: LabLayout
    state: LabState
    already_running: bool
    seconds: float


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    pid: int
    alive: bool
    endpoint: str = ""


def _check_dir(layout: LabLayout) -> None:
    root = layout.root
    if root.exists() and not root.is_dir():
        raise InvalidInput(f"--dir {root}: exists and is not a directory; choose another path")
    if root.exists() and any(root.iterdir()) and not layout.marker.exists():
        raise InvalidInput(
            f"--dir {root}: holds files that are not a drorch lab (no {MARKER}); "
            "choose an empty or new directory"
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise InvalidInput(f"--dir {root}: not writable ({exc.strerror}); choose a writable directory") from None


def _inside_vpn(site: str) -> bool:
    """The sites a ``--vpn`` lab runs behind the VPN (the non-AWS one: NHN)."""
    return SITE_REGIONS[site] is None


def _other_port(host: str, taken: int) -> int:
    """A free port on ``host`` other than ``taken``: the app port is chosen but not yet bound, so a bind test
    alone would happily hand it out again for the database on the same address."""
    for _ in range(20):
        port = free_port(host)
        if port != taken:
            return port
    raise OSError(f"no free TCP port on {host} besides {taken}")


def _choose_ports(tunnel: vpn.VpnLab | None) -> tuple[dict[str, SiteState], int, int]:
    if tunnel is None:
        subnet = free_lab_subnet()
        ips = {site: f"{subnet}.{SITE_HOSTS[site]}" for site in SITES}
    else:
        ips = {site: tunnel.nhn_address(SITE_HOSTS[site]) if _inside_vpn(site) else tunnel.aws_address(SITE_HOSTS[site])
               for site in SITES}
    # Only the host's addresses can be tried here; a VPN's nhn namespace is new, so every port is free there.
    on_host = [ip for site, ip in ips.items() if tunnel is None or not _inside_vpn(site)]
    # Clients reach every site on the same port after resolving the name, so the app port is common.
    app_port = free_port(on_host[0], also_on=tuple(on_host[1:]))
    site_states = {s: SiteState(ip=ip, app_port=app_port, mysql_port=_other_port(ip if ip in on_host else "127.0.0.1",
                                                                                  app_port))
                   for s, ip in ips.items()}
    return site_states, free_port(), free_port()


def _start_vpn(layout: LabLayout) -> vpn.VpnLab:
    """The VPN with the sites' addresses: AWS sites on the host's end of the host link, NHN inside."""
    return vpn.start(layout.vpn_dir,
                     nhn_hosts=[SITE_HOSTS[site] for site in SITES if _inside_vpn(site)],
                     aws_hosts=[SITE_HOSTS[site] for site in SITES if not _inside_vpn(site)])


def _seed(site_states: dict[str, SiteState]) -> dict[str, Any]:
    from drorch.lab.layout import RECORD, SITE_REGIONS, ZONE

    failover = {"seoul": "PRIMARY", "tokyo": "SECONDARY"}
    return {
        "account_id": "123456789012", "zone": ZONE, "record": RECORD, "ttl": files.LAB_TTL,
        "sites": {
            name: {"region": SITE_REGIONS[name], "ip": s.ip, "app_port": s.app_port, "failover": failover.get(name)}
            for name, s in site_states.items()
        },
    }


def _start_all(layout: LabLayout, accounts: Accounts, os_password: str, with_vpn: bool = False) -> LabState:
    sites = list(SITES)
    tunnel = _start_vpn(layout) if with_vpn else None
    site_states, aws_port, os_port = _choose_ports(tunnel)
    netns = {} if tunnel is None else {
        f"{kind}-{site}": tunnel.nhn.namespace for site in sites if _inside_vpn(site) for kind in ("mariadb", "app")}
    template = mariadb.build_template(layout, accounts)
    started: dict[str, processes.Tracked] = {}
    for site in sites:
        s = site_states[site]
        started[f"mariadb-{site}"] = mariadb.start_server(layout, site, template, s.ip, s.mysql_port,
                                                          netns=netns.get(f"mariadb-{site}"))
    layout.aws_dir.mkdir(parents=True, exist_ok=True)
    seed_file, ready_file = layout.aws_dir / "seed.json", layout.aws_dir / "ready.json"
    ready_file.unlink(missing_ok=True)
    seed_file.write_text(json.dumps(_seed(site_states), indent=2))
    py = sys.executable
    started["aws"] = processes.start(layout.run, layout.logs, "aws", [
        py, "-m", "drorch.lab.aws_server", "--host", "127.0.0.1", "--port", str(aws_port),
        "--seed", str(seed_file), "--ready-file", str(ready_file), "--lab-dir", str(layout.root)])
    started["openstack"] = processes.start(layout.run, layout.logs, "openstack", [
        py, "-m", "drorch.lab.openstack_api", "--host", "127.0.0.1", "--port", str(os_port),
        "--user", files.OPENSTACK_USER, "--password-file", str(layout.secret("openstack")),
        "--project", files.OPENSTACK_PROJECT, "--region", "KR1"])
    for site in sites:
        s = site_states[site]
        started[f"app-{site}"] = processes.start(layout.run, layout.logs, f"app-{site}", [
            py, "-m", "drorch.lab.app", "--site", site, "--host", s.ip, "--port", str(s.app_port),
            "--db-host", s.ip, "--db-port", str(s.mysql_port), "--db-password-file", str(layout.secret("app"))],
            netns=netns.get(f"app-{site}"))
    clients = {site: mariadb.admin_client(site, s.ip, s.mysql_port, accounts.admin) for site, s in site_states.items()}
    for site in sites:
        mariadb.wait_ready(clients[site], started[f"mariadb-{site}"], START_TIMEOUT)
    primary = site_states[HOME_PRIMARY]
    mariadb.make_primary(clients[HOME_PRIMARY])
    for site in sites:
        if site != HOME_PRIMARY:
            mariadb.start_replication(clients[site], primary.ip, primary.mysql_port, accounts.repl)
    for site in sites:
        if site != HOME_PRIMARY:
            mariadb.wait_replicating(clients[site], START_TIMEOUT)
    mariadb.wait_semi_sync(clients[HOME_PRIMARY], START_TIMEOUT)
    aws_ready = _wait_ready_file(ready_file, started["aws"])
    for name in ("openstack", *(f"app-{site}" for site in sites)):
        host, port = ("127.0.0.1", os_port) if name == "openstack" else (
            site_states[name[4:]].ip, site_states[name[4:]].app_port)
        if not wait_listening(host, port, START_TIMEOUT, functools.partial(processes.is_alive, started[name])):
            raise OperationFailed(f"lab process {name} did not start; see {layout.logs / (name + '.log')}")
    return LabState(site_states, aws_port, os_port, aws_ready, metrics_port=free_port(),
                    commands={name: list(item.argv) for name, item in started.items()},
                    netns=netns, vpn_dir=None if tunnel is None else str(layout.vpn_dir))


def _wait_ready_file(path: Path, item: processes.Tracked) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if path.exists():
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        if not processes.is_alive(item):
            raise OperationFailed(f"the AWS (moto) server exited during start-up; see its log in {path.parent}")
        time.sleep(0.05)
    raise OperationFailed(f"the AWS (moto) server was not ready within {START_TIMEOUT:.0f} s")



def up(root: Path, with_vpn: bool = False) -> UpResult:
    """Start the lab in ``root`` (idempotent: a running lab is reported, not started twice).

    ``with_vpn``: the NHN site behind a real strongSwan VPN (see the module docstring).
    """
    started_at = time.monotonic()
    layout = LabLayout(root.resolve())
    _check_dir(layout)
    if layout.state.exists():
        statuses = status(layout.root)
        alive = [s for s in statuses if s.alive]
        if alive and len(alive) == len(statuses):
            running = LabState.load(layout.state)
            if running.has_vpn != with_vpn:
                have, want = ("with", "without") if running.has_vpn else ("without", "with")
                raise InvalidInput(
                    f"the lab in {layout.root} runs {have} the VPN and `lab up` was asked for one {want} it; "
                    f"run `drorch lab down --dir {layout.root}` first, then `drorch lab up` again")
            return UpResult(layout, running, True, time.monotonic() - started_at)
        if alive:
            dead = ", ".join(s.name for s in statuses if not s.alive)
            raise OperationFailed(
                f"the lab in {layout.root} is partly running (stopped: {dead}); "
                f"run `drorch lab down --dir {layout.root}` and then `drorch lab up` again, "
                f"or `drorch lab chaos heal --dir {layout.root}` to restart what stopped"
            )
    mariadb.find_program("mariadbd")
    mariadb.find_program("mariadb-install-db")
    if with_vpn:
        vpn.check_tools()
    layout.marker.write_text("drorch lab\n")
    accounts = Accounts(*(secrets.token_urlsafe(18) for _ in range(4)))
    os_password = secrets.token_urlsafe(18)
    files.write_secrets(layout, accounts, os_password)
    last_error: Exception | None = None
    for _attempt in range(2):  # a second try with fresh ports covers a port taken between choice and bind
        try:
            state = _start_all(layout, accounts, os_password, with_vpn)
            break
        except BaseException as exc:
            _stop_all(layout)
            if not isinstance(exc, OperationFailed):
                raise
            last_error = exc
    else:
        assert last_error is not None
        raise last_error
    state.save(layout.state)
    tunnel = vpn.open_vpn(layout.vpn_dir) if with_vpn else None
    files.write_clouds_yaml(layout, state, os_password)
    files.write_config(layout, state, tunnel)
    files.write_manifest(layout, state, accounts, tunnel)
    return UpResult(layout, state, False, time.monotonic() - started_at)


def _stop_key(item: processes.Tracked) -> int:
    return next((i for i, prefix in enumerate(_STOP_ORDER) if item.name.startswith(prefix)), len(_STOP_ORDER))


def _stop_all(layout: LabLayout) -> list[ProcessStatus]:
    """Every tracked process (those in the VPN's namespace too), then the VPN: charons, namespaces, links."""
    stopped = []
    for item in sorted(processes.tracked_all(layout.run), key=_stop_key):
        stopped.append(ProcessStatus(item.name, item.pid, processes.stop(layout.run, item)))
    if layout.vpn_dir.exists():
        charons = _charons(layout)
        vpn.stop_dir(layout.vpn_dir)
        stopped += charons
    return stopped


def _charons(layout: LabLayout) -> list[ProcessStatus]:
    """The VPN's two daemons, named ``charon-nhn`` and ``charon-aws``; their endpoint is the VICI socket."""
    tunnel = vpn.open_vpn(layout.vpn_dir) if layout.vpn_dir.exists() else None
    if tunnel is None:
        return []
    return [ProcessStatus(f"charon-{side.name}", side.pid, processes.is_alive(side.tracked), f"unix://{side.vici_socket}")
            for side in tunnel.sides]


def down(root: Path) -> list[ProcessStatus]:
    """Stop every process the lab started; report which were still running."""
    layout = LabLayout(root.resolve())
    if not layout.marker.exists():
        raise InvalidInput(f"--dir {root}: no drorch lab here (no {MARKER}); pass the directory given to `lab up`")
    return _stop_all(layout)


def _endpoint(state: LabState | None, name: str) -> str:
    """Where a lab process serves, for people reading ``lab status``."""
    if state is None:
        return ""
    kind, _, site = name.partition("-")
    if kind == "app" and site in state.sites:
        return state.app_url(site)
    if kind == "mariadb" and site in state.sites:
        return f"mysql://{state.sites[site].ip}:{state.sites[site].mysql_port}"
    return {"aws": state.aws_endpoint, "openstack": state.openstack_auth_url}.get(name, "")


def status(root: Path) -> list[ProcessStatus]:
    """Every process the lab started, whether it runs, and where it serves."""
    layout = LabLayout(root.resolve())
    if not layout.marker.exists():
        raise InvalidInput(f"--dir {root}: no drorch lab here (no {MARKER}); pass the directory given to `lab up`")
    state = LabState.load(layout.state) if layout.state.exists() else None
    return [ProcessStatus(item.name, item.pid, processes.is_alive(item), _endpoint(state, item.name))
            for item in processes.tracked_all(layout.run)] + _charons(layout)
