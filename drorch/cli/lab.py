"""``drorch lab ...``: start, stop and poke the local multi-site lab."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from drorch.cli.output import Output, OutputOption, emit_json, handle_errors, info

app = typer.Typer(help="Run the whole multi-site estate on this machine (MariaDB, moto, OpenStack API, apps).",
                  no_args_is_help=True)

DirOption = typer.Option(Path("lab"), "--dir", help="directory holding the lab's data, logs and drorch.yaml")


@app.command()
@handle_errors
def up(
    dir: Path = DirOption,
    vpn: bool = typer.Option(False, "--vpn", help="put the NHN site behind a real strongSwan VPN "
                             "(two tunnels, network namespaces; needs root)"),
    output: Output = OutputOption,
) -> None:
    """Start the lab (idempotent) and write DIR/drorch.yaml and DIR/lab.json."""
    from drorch.lab import lifecycle

    result = lifecycle.up(dir, with_vpn=vpn)
    sites = {name: result.state.app_url(name) for name in result.state.sites}
    doc = {"dir": str(result.layout.root), "already_running": result.already_running,
           "seconds": round(result.seconds, 2), "config": str(result.layout.config),
           "manifest": str(result.layout.manifest),
           "sites": sites, "vpn": result.state.vpn_dir}
    if output == Output.json:
        emit_json(doc)
        return
    verb = "already running" if result.already_running else f"started in {result.seconds:.1f} s"
    info(f"lab {verb} in {result.layout.root}")
    for name, url in sites.items():
        info(f"  {name:6} {url}")
    if result.state.vpn_dir is not None:
        info(f"  VPN    {result.state.vpn_dir} (nhn behind two strongSwan tunnels)")
    info(f"config: {result.layout.config}  (export DRORCH_CONFIG={result.layout.config})")


@app.command()
@handle_errors
def down(dir: Path = DirOption, output: Output = OutputOption) -> None:
    """Stop every process the lab started (by PID)."""
    from drorch.lab import lifecycle

    stopped = lifecycle.down(dir)
    if output == Output.json:
        emit_json({"stopped": [{"name": s.name, "pid": s.pid, "was_running": s.alive} for s in stopped]})
        return
    if not stopped:
        info("nothing was running")
    for item in stopped:
        info(f"  {item.name:16} pid {item.pid:7}  {'stopped' if item.alive else 'was not running (cleaned up)'}")


@app.command()
@handle_errors
def status(dir: Path = DirOption, output: Output = OutputOption) -> None:
    """Show the lab's processes and whether they run."""
    from drorch.lab import lifecycle

    items = lifecycle.status(dir)
    if output == Output.json:
        emit_json({"processes": [{"name": s.name, "pid": s.pid, "alive": s.alive, "endpoint": s.endpoint}
                                 for s in items]})
        return
    if not items:
        print("the lab is not running")
    for item in items:
        print(f"{item.name:16} pid {item.pid:7}  {'running' if item.alive else 'STOPPED':8} {item.endpoint}")


@app.command()
@handle_errors
def resolve(dir: Path = DirOption, output: Output = OutputOption) -> None:
    """Answer the service name as Route 53 would now (failover policy + real health)."""
    from drorch.lab import control

    answer = control.resolve_now(dir)
    if output == Output.json:
        emit_json({"value": answer.value, "site": answer.set_identifier, "ttl": answer.ttl})
        return
    print(f"{answer.value}  ({answer.set_identifier}, ttl {answer.ttl})")


@app.command()
@handle_errors
def load(
    rate: float = typer.Option(20.0, "--rate", min=0.1, max=2000.0, help="writes per second"),
    duration: float = typer.Option(30.0, "--duration", min=0.1, max=86400.0, help="seconds to run"),
    out: Path = typer.Option(..., "--out", help="JSON-lines log of every write (the ground truth)"),
    dir: Path = DirOption,
    output: Output = OutputOption,
) -> None:
    """Write orders through the service name at a steady rate; report outage and lost writes.

    SIGTERM ends the writing early (the report still follows): this is how a drill stops it when
    it is the configured ``ground_truth.load`` command.
    """
    import signal
    import threading

    from drorch.lab import load as load_mod
    from drorch.lab.control import open_lab

    lab = open_lab(dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    load_mod.run(lab, load_mod.LoadSpec(rate, duration, out), stop)
    truth = load_mod.verify(lab, out)
    doc = {"log": str(out), **truth.to_json()}
    if output == Output.json:
        emit_json(doc)
        return
    print(f"writes: {truth.attempted} attempted, {truth.acknowledged} acknowledged, {truth.failed} failed; "
          f"longest client-observed outage {truth.longest_outage_seconds:.3f} s; "
          f"lost acknowledged writes: {len(truth.lost_refs)}")


@app.command()
@handle_errors
def orders(
    log: Path = typer.Option(..., "--log", help="a write log of `drorch lab load`"),
    dir: Path = DirOption,
) -> None:
    """Print the client_ref of every write in LOG that the writable primary holds, one per line.

    The lab's answer to a drill's ``ground_truth.verify`` command.
    """
    from drorch.errors import InvalidInput
    from drorch.lab import load as load_mod
    from drorch.lab.control import open_lab

    if not log.is_file():
        raise InvalidInput(f"--log {log}: no such file (give the --out file of `drorch lab load`)")
    for ref in sorted(load_mod.held(open_lab(dir), log)):
        print(ref)


class ChaosAction(StrEnum):
    kill_db = "kill-db"
    start_db = "start-db"
    stop_app = "stop-app"
    start_app = "start-app"
    delay_replica = "delay-replica"
    vpn_down = "vpn-down"
    vpn_up = "vpn-up"
    heal = "heal"
    bad_migration = "bad-migration"


@app.command()
@handle_errors
def chaos(
    action: ChaosAction = typer.Argument(..., help="what to break or mend"),
    site: str | None = typer.Argument(None, help="seoul, tokyo or nhn (all actions but heal and vpn-*); "
                                      "for vpn-down and vpn-up a TUNNEL (tunnel-1, tunnel-2; default both)"),
    seconds: int = typer.Option(0, "--seconds", help="delay-replica: apply events this many seconds late; 0 removes"),
    table: str = typer.Option("shop.orders", "--table", help="bad-migration: the table dropped on the primary"),
    dir: Path = DirOption,
    output: Output = OutputOption,
) -> None:
    """Break the lab on purpose and heal it: kill-db (SIGKILL), start-db, stop-app, start-app, delay-replica,
    vpn-down [TUNNEL], vpn-up [TUNNEL] (a lab started with --vpn), bad-migration (DROP TABLE on the primary;
    prints the time just before it, for `drorch restore mysql --to-time`), heal."""
    from drorch.errors import InvalidInput
    from drorch.lab import chaos as chaos_mod
    from drorch.lab.control import open_lab

    lab = open_lab(dir)
    if action == ChaosAction.bad_migration:
        dropped = chaos_mod.bad_migration(lab, table)
        if output == Output.json:
            emit_json({"action": action.value, **dropped})
        else:
            info(f"dropped {dropped['table']} on {dropped['site']}; just before: {dropped['before_iso']}")
        return
    if action in (ChaosAction.vpn_down, ChaosAction.vpn_up):
        mend = chaos_mod.vpn_down if action == ChaosAction.vpn_down else chaos_mod.vpn_up
        tunnels = mend(lab, site)
        if output == Output.json:
            emit_json({"action": action.value, "tunnel": site, "changed": tunnels})
        else:
            info(f"{action.value} {site or 'all tunnels'}: changed {', '.join(tunnels) or 'nothing'}")
        return
    if action == ChaosAction.heal:
        changed: object = chaos_mod.heal(lab)
    elif site is None:
        raise InvalidInput(f"lab chaos {action.value}: name the SITE (seoul, tokyo or nhn)")
    elif action == ChaosAction.delay_replica:
        chaos_mod.delay_replica(lab, site, seconds)
        changed = True
    else:
        changed = {
            ChaosAction.kill_db: chaos_mod.kill_db, ChaosAction.start_db: chaos_mod.start_db,
            ChaosAction.stop_app: chaos_mod.stop_app, ChaosAction.start_app: chaos_mod.start_app,
        }[action](lab, site)
    if output == Output.json:
        emit_json({"action": action.value, "site": site, "changed": changed})
    else:
        info(f"{action.value} {site or ''}: {changed}")
