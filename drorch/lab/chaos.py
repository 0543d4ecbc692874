"""``drorch lab chaos``: break the lab the way real sites break, and heal it.

Faults act on real processes and servers: a killed database is SIGKILLed (no
clean shutdown), a stopped app really stops answering, a delayed replica really
applies late. ``heal`` restarts what is down and removes delays, but never
changes which database is primary — that is drorch's job, not the lab's.
"""

from __future__ import annotations

from collections.abc import Callable

from drorch.errors import InvalidInput, OperationFailed
from drorch.lab import mariadb, processes
from drorch.lab.control import Lab
from drorch.lab.ports import wait_listening

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
    wait_ready(processes.start(lab.layout.run, lab.layout.logs, name, list(item.argv)))
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


def heal(lab: Lab) -> list[str]:
    """Restart what is down and remove replica delays; returns what it did."""
    done = []
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
