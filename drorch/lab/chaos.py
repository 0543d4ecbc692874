"""``drorch lab chaos``: break the lab the way real sites break, and heal it.

Faults act on real processes and servers: a killed database is SIGKILLed (no
clean shutdown), a stopped app really stops answering, a delayed replica really
applies late. ``heal`` restarts what is down and removes delays, but never
changes which database is primary — that is drorch's job, not the lab's.

In a ``--vpn`` lab, ``vpn-down`` takes tunnels down for real (the AWS end of the
tunnel's link goes down and its SAs are deleted on both daemons) and marks them
DOWN in the AWS VPN telemetry too, as AWS would report them; ``vpn-up`` and
``heal`` bring them back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import requests

from drorch.errors import InvalidInput, OperationFailed
from drorch.lab import mariadb, processes, vpn
from drorch.lab.control import Lab
from drorch.lab.ports import wait_listening
from drorch.providers import strongswan

START_TIMEOUT = 30.0


def _tracked(lab: Lab, name: str) -> processes.Tracked:
    argv = lab.state.commands.get(name)
    if argv is None:
        raise InvalidInput(f"the lab has no process named {name}")
    found = processes.read(lab.layout.run, name)
    return found if found is not None else processes.Tracked(name, -1, tuple(argv))


def _site(lab: Lab, site: str) -> str:
    if site not in lab.state.sites:
        raise InvalidInput(f"unknown site '{site}': the lab has {', '.join(lab.state.sites)}")
    return site


def kill_db(lab: Lab, site: str) -> bool:
    """SIGKILL the site's MariaDB, like a host crash. Returns whether it was running."""
    item = _tracked(lab, f"mariadb-{_site(lab, site)}")
    was_alive = processes.is_alive(item)
    processes.kill(item)
    return was_alive


def _start_again(lab: Lab, name: str, wait_ready: Callable[[processes.Tracked], None]) -> bool:
    """Start a stopped lab process with its recorded command line; False when it already runs."""
    item = _tracked(lab, name)
    if processes.is_alive(item):
        return False
    wait_ready(processes.start(lab.layout.run, lab.layout.logs, name, list(item.argv),
                               netns=lab.state.netns.get(name)))
    return True


def start_db(lab: Lab, site: str) -> bool:
    """Start the site's MariaDB again (read-only, as every lab server starts). Returns whether it started."""
    db = lab.admin(_site(lab, site))
    return _start_again(lab, f"mariadb-{site}", lambda started: mariadb.wait_ready(db, started, START_TIMEOUT))


def stop_app(lab: Lab, site: str) -> bool:
    item = _tracked(lab, f"app-{_site(lab, site)}")
    return processes.stop(lab.layout.run, item)


def start_app(lab: Lab, site: str) -> bool:
    s = lab.state.sites[_site(lab, site)]

    def wait_ready(started: processes.Tracked) -> None:
        if not wait_listening(s.ip, s.app_port, START_TIMEOUT, lambda: processes.is_alive(started)):
            raise OperationFailed(f"app-{site} did not start; see {lab.layout.logs / f'app-{site}.log'}")

    return _start_again(lab, f"app-{site}", wait_ready)


def delay_replica(lab: Lab, site: str, seconds: int) -> None:
    """Make a replica apply events ``seconds`` late (``MASTER_DELAY``); 0 removes the delay."""
    if seconds < 0:
        raise InvalidInput(f"--seconds {seconds}: a delay cannot be negative; use 0 to remove it")
    db = lab.admin(_site(lab, site))
    if db.state().replica is None:
        raise InvalidInput(f"{site} is not a replica now, so it cannot be delayed")
    db.execute("STOP SLAVE", f"CHANGE MASTER TO MASTER_DELAY={int(seconds)}", "START SLAVE")


def bad_migration(lab: Lab, table: str = "shop.orders") -> dict[str, object]:
    """A migration gone wrong: ``DROP TABLE`` on the primary, replicated everywhere within a second.

    Returns the site, the table and the time just before the drop (what a point-in-time restore aims at)."""
    import time

    schema, _, name = table.partition(".")
    if not schema or not name or "`" in table:
        raise InvalidInput(f"--table {table}: write SCHEMA.TABLE")
    writable = [site for site in lab.state.sites if lab.admin(site).ping() and not lab.admin(site).state().read_only]
    if len(writable) != 1:
        raise OperationFailed(f"bad-migration needs exactly one writable primary, found {writable or 'none'}")
    db = lab.admin(writable[0])
    if not db.query("SELECT 1 AS x FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                    (schema, name)):
        raise InvalidInput(f"--table {table}: no such table on the primary {writable[0]}")
    before = time.time()
    db.execute(f"DROP TABLE `{schema}`.`{name}`")
    return {"site": writable[0], "table": table, "before": before,
            "before_iso": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(before)) + f".{int(before % 1 * 1e6):06d}Z"}


def _vpn(lab: Lab) -> vpn.VpnLab:
    if lab.state.vpn_dir is None:
        raise InvalidInput(f"the lab in {lab.layout.root} has no VPN; start it with "
                           f"`drorch lab up --vpn --dir {lab.layout.root}` (after `drorch lab down`)")
    found = vpn.open_vpn(Path(lab.state.vpn_dir))
    if found is None or not vpn.is_running(found):
        raise OperationFailed(f"the lab's VPN in {lab.state.vpn_dir} is not running; "
                              f"restart the lab (`drorch lab down` then `drorch lab up --vpn`)")
    return found


def _chosen(tunnels: vpn.VpnLab, name: str | None) -> list[str]:
    return [tunnels.tunnel(name).name] if name is not None else tunnels.children


def _up_now(tunnels: vpn.VpnLab) -> dict[str, bool]:
    """Tunnel -> up on both daemons."""
    states = [{t.name: t.up for t in strongswan.tunnels(side.vici_socket, None, tunnels.children)}
              for side in tunnels.sides]
    return {name: all(state[name] for state in states) for name in tunnels.children}


def _aws_telemetry(lab: Lab, tunnels: vpn.VpnLab, name: str, status: str) -> None:
    """What AWS reports for the tunnel (moto's telemetry, through the lab's control hook): tunnels pair by position."""
    outside_ips = lab.state.aws_ready.get("tunnels") or []
    endpoint = lab.state.aws_ready.get("control_endpoint")
    index = tunnels.children.index(name)
    if endpoint is None or index >= len(outside_ips):
        return
    response = requests.post(f"{endpoint}/_drorch/vpn-tunnel", timeout=5, json={
        "vpn_connection_id": lab.state.aws_ready["vpn_connection_id"], "outside_ip": outside_ips[index],
        "status": status, "status_message": "" if status == "UP" else "lab chaos vpn-down"})
    if response.status_code != 200:
        raise OperationFailed(f"the AWS (moto) server refused the telemetry of {name}: {response.text.strip()}")


def vpn_down(lab: Lab, tunnel: str | None = None) -> list[str]:
    """Take ``tunnel`` (both when None) down; returns the tunnels that were up."""
    return _switch(lab, tunnel, up=False)


def vpn_up(lab: Lab, tunnel: str | None = None) -> list[str]:
    """Bring ``tunnel`` (both when None) up and wait until it is INSTALLED; returns the tunnels that were down."""
    return _switch(lab, tunnel, up=True)


def _switch(lab: Lab, tunnel: str | None, up: bool) -> list[str]:
    """Both sides of the VPN at once: the strongSwan tunnel and the AWS side's telemetry; returns what changed."""
    tunnels = _vpn(lab)
    names = _chosen(tunnels, tunnel)
    before = _up_now(tunnels)
    for name in names:
        (vpn.tunnel_up if up else vpn.tunnel_down)(tunnels, name)
        _aws_telemetry(lab, tunnels, name, "UP" if up else "DOWN")
    return [name for name in names if before[name] != up]


def heal(lab: Lab) -> list[str]:
    """Restart what is down (VPN tunnels first) and remove replica delays; returns what it did."""
    done = [f"brought VPN {name} up" for name in vpn_up(lab)] if lab.state.has_vpn else []
    for site in lab.state.sites:
        if start_db(lab, site):
            done.append(f"started {site} database")
        if start_app(lab, site):
            done.append(f"started {site} app")
    for site in lab.state.sites:
        db = lab.admin(site)
        replica = db.state().replica
        if replica is not None:
            delay = db.query("SHOW SLAVE STATUS")[0].get("SQL_Delay", 0)
            if int(delay or 0) != 0:
                delay_replica(lab, site, 0)
                done.append(f"removed {site} replica delay")
            if not (replica.io_running and replica.sql_running):
                db.execute("START SLAVE")
                done.append(f"restarted {site} replication")
    return done
