"""The switchover drill: a planned failover to a site and back, with a client writing throughout.

drorch's own figures (RTO timed by its steps, RPO proven by GTID or heartbeats) are
put next to what the client saw: the longest time its writes failed, and the
acknowledged writes missing from the final primary. Both are judged against the
objectives, so an estimate that flatters itself shows up as a failed drill. The
estate ends as it started, the standby back at its warm size (the failback does it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drorch.drill.archive import write_reports
from drorch.engine.executor import Options
from drorch.engine.failback import failback
from drorch.engine.failover import PREAPPROVED, FailoverResult, failover
from drorch.engine.run import Progress, Run
from drorch.errors import DrorchError, InvalidInput, OperationFailed
from drorch.measure.groundtruth import GroundTruth, read_log
from drorch.providers.estate import Estate
from drorch.state.journal import Journal

SETTLE_SECONDS = 3.0  # load keeps running on the new primary before going back: the client must see it work


@dataclass(frozen=True)
class DrillResult:
    run_id: str
    to: str
    home: str
    status: str  # succeeded (objectives met) | missed (ran, an objective missed) | failed
    measured: dict[str, Any]
    objectives: dict[str, dict[str, Any]]
    failover_run: str | None
    failback_run: str | None
    notes: list[str] = field(default_factory=list)

    @property
    def missed(self) -> list[str]:
        return [name for name, verdict in self.objectives.items() if not verdict["met"]]

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "mode": "switchover", "to": self.to, "home": self.home,
                "status": self.status, "measured": self.measured, "objectives": self.objectives,
                "missed": self.missed, "failover_run": self.failover_run, "failback_run": self.failback_run,
                "notes": self.notes}


def drill(estate: Estate, to: str, rate: float, journal: Journal, progress: Progress | None = None,
          options: Options = PREAPPROVED, settle: float = SETTLE_SECONDS, schedule: str | None = None) -> DrillResult:
    """Fail over to ``to`` and back while the lab's client writes ``rate`` orders per second.

    ``schedule`` names the configured drill that ``serve`` is running (None: run by hand).
    """
    config = estate.config
    config.site(to)
    home = config.primary_site
    if to == home:
        raise InvalidInput(f"--to {to}: that is the home primary; a drill moves the service away and back "
                           f"(choose one of {', '.join(s for s in config.sites if s != home)})")
    lab = _lab_of(estate)
    log = config.resolve_path(Path("drills")) / f"load-{int(time.time())}.jsonl"
    run = Run("drill", {"mode": "switchover", "to": to, "home": home, "load_rate": rate, "schedule": schedule},
              progress, journal)
    stop = threading.Event()
    loader = threading.Thread(target=_load, args=(lab, rate, log, stop), name="drill-load", daemon=True)
    results: dict[str, FailoverResult] = {}
    try:
        run.step("start the client load", lambda: _start(loader, log))
        results["there"] = _move(run, f"fail over to {to}", lambda: failover(
            estate, to, progress, journal, trigger="drill", options=options))
        run.step(f"keep writing on {to} for {settle:g} s", lambda: {"slept": settle if not stop.wait(settle) else 0})
        results["back"] = _move(run, f"fail back to {home}", lambda: failback(
            estate, progress, journal, home, options=options).switchover)
    except DrorchError as exc:
        stop.set()
        loader.join(timeout=30)
        run.finish("failed", {"mode": "switchover", "to": to, "schedule": schedule, "error": str(exc),
                              "failover_run": _id(results.get("there")), "failback_run": _id(results.get("back"))})
        write_reports(config, journal, run.run_id)
        raise
    finally:
        stop.set()
        loader.join(timeout=30)
    truth = run.step("stop the load and check every acknowledged write", lambda: _truth(lab, log))
    measured = _measured(results["there"], truth, log)
    objectives = _judge(config.objectives.rto_seconds, config.objectives.rpo_seconds, measured)
    status = "succeeded" if all(v["met"] for v in objectives.values()) else "missed"
    summary = {"mode": "switchover", "to": to, "home": home, "schedule": schedule, "measured": measured,
               "objectives": objectives,
               "failover_run": results["there"].run_id, "failback_run": results["back"].run_id,
               "outages": truth["outages"]}  # wall-clock windows of the client's failed writes, for the timeline
    run.finish(status, summary)
    write_reports(config, journal, run.run_id)
    return DrillResult(run.run_id, to, home, status, measured, objectives, results["there"].run_id,
                       results["back"].run_id)


def _lab_of(estate: Estate) -> Any:
    """The lab this config belongs to: its client is the drill's ground truth."""
    from drorch.lab.control import open_lab

    source = estate.config.source_path
    if source is None or not (source.parent / "lab.json").exists():
        raise InvalidInput("drill: ground truth needs a client writing through the service name; on the lab it is "
                           "`lab load` (run the drill with the lab's drorch.yaml); real estates are not supported yet")
    return open_lab(source.parent)


def _load(lab: Any, rate: float, log: Path, stop: threading.Event) -> None:
    from drorch.lab import load

    load.run(lab, load.LoadSpec(rate, 3600.0, log), stop)


def _start(loader: threading.Thread, log: Path) -> dict[str, Any]:
    loader.start()
    deadline = time.monotonic() + 10
    while not (log.exists() and log.stat().st_size > 0):
        if time.monotonic() > deadline:
            raise OperationFailed(f"the client load wrote nothing within 10 s (log {log})")
        time.sleep(0.05)
    return {"log": str(log)}


def _move(run: Run, name: str, move: Callable[[], FailoverResult]) -> FailoverResult:
    holder: dict[str, FailoverResult] = {}

    def step() -> dict[str, Any]:
        result: FailoverResult = move()
        holder["result"] = result
        if result.status != "succeeded":
            raise OperationFailed(f"{name}: {result.status} ({result.error}); see `drorch runs show {result.run_id}`")
        return {"run_id": result.run_id, "rto_seconds": result.rto_seconds, "rpo_seconds": result.rpo_seconds}

    run.step(name, step)
    return holder["result"]


def _truth(lab: Any, log: Path) -> dict[str, Any]:
    from drorch.lab import load

    found: GroundTruth = load.verify(lab, log)
    return found.to_json()


def _measured(there: FailoverResult, truth: dict[str, Any], log: Path) -> dict[str, Any]:
    lost = set(truth["lost_refs"])
    lost_times = [r.done for r in read_log(log) if r.client_ref in lost]
    return {
        "drorch_rto_seconds": there.rto_seconds, "drorch_rpo_seconds": there.rpo_seconds,
        "client_outage_seconds": truth["outage_seconds"], "acknowledged_writes": truth["acknowledged"],
        "attempted_writes": truth["attempted"], "lost_acknowledged_writes": truth["lost_acknowledged_writes"],
        "lost_span_seconds": round(max(lost_times) - min(lost_times), 3) if lost_times else 0.0,
    }


def _judge(rto: float, rpo: float, measured: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each objective against the worse of drorch's figure and the client's."""
    worst_rto = max(measured["client_outage_seconds"], measured["drorch_rto_seconds"] or 0.0)
    lost_span = measured["lost_span_seconds"] if measured["lost_acknowledged_writes"] else 0.0
    worst_rpo = max(lost_span, measured["drorch_rpo_seconds"] or 0.0)
    lost_any = measured["lost_acknowledged_writes"] > 0  # even one lost write breaks a zero-loss objective
    return {"rto": {"objective_seconds": rto, "measured_seconds": round(worst_rto, 3), "met": worst_rto <= rto},
            "rpo": {"objective_seconds": rpo, "measured_seconds": round(worst_rpo, 3),
                    "met": worst_rpo <= rpo and not (lost_any and rpo == 0)}}


def _id(result: FailoverResult | None) -> str | None:
    return None if result is None else result.run_id
