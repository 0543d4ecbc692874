"""The chaos drill: break the primary for real, let detection and automatic failover act, measure, fail back.

Nothing is planned here: a fault breaks the home primary while the client writes
(on the lab its database is SIGKILLed and its app stopped; on an estate, its own
hook command or AWS FIS experiment, see ``faults``), and a controller (the same ``serve`` loop that
runs in production, with automatic failover on and the drill's target as the
only candidate) must notice and fail over on its own. Its failover is journaled
with trigger ``chaos-drill``, so it does not start the anti-flapping block that
would hold back a real automatic failover afterwards.

The RTO judged is the client's view from the fault, and drorch's from the fault
(detection plus the failover), not from the moment drorch noticed. Then the
broken site is healed (its database starts read-only, as every server does) and failed back:
reprotect refuses, loudly and resumably, if the kill left transactions only the
old primary has.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from drorch.config.schema import Config
from drorch.drill.archive import write_reports
from drorch.drill.client import client_for
from drorch.drill.faults import Fault, fault_for
from drorch.drill.harness import DrillResult, finish_failed, judge, load_log, measured, move
from drorch.drill.switchover import SETTLE_SECONDS, away_from_home
from drorch.engine.executor import Options
from drorch.engine.failback import failback
from drorch.engine.failover import FailoverResult
from drorch.engine.run import Progress, Run
from drorch.errors import DrorchError, OperationFailed, RefusedForSafety
from drorch.providers.estate import Estate
from drorch.serve.daemon import Round, serve
from drorch.state.backends import holding_lease
from drorch.state.journal import Journal

TRIGGER = "chaos-drill"
LEAD_TIMEOUT = 15.0


@dataclass
class _Controller:
    """The drill's own controller, in a thread: its rounds, and the one in which it failed over."""

    config: Config
    stop: threading.Event
    led: threading.Event
    acted: threading.Event
    decided: Round | None = None
    thread: threading.Thread | None = None

    def on_round(self, found: Round) -> None:
        if found.leader:
            self.led.set()
        if found.decision.acted and self.decided is None:
            self.decided = found
            self.acted.set()

    def start(self) -> dict[str, Any]:
        self.thread = threading.Thread(target=serve, args=(self.config, self.stop, self.on_round),
                                       kwargs={"trigger": TRIGGER}, name="chaos-controller", daemon=True)
        self.thread.start()
        if not self.led.wait(LEAD_TIMEOUT):
            self.finish()
            raise RefusedForSafety("the drill's controller could not take the controller lease within "
                                   f"{LEAD_TIMEOUT:g} s (another controller holds it); stop that `drorch serve` "
                                   "or run the chaos drill where it runs")
        return {"leading": True}

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=60)


def controller_config(config: Config, to: str) -> Config:
    """The estate's config with automatic failover on, ``to`` the only candidate and metrics on a free port."""
    return config.model_copy(update={
        "automation": config.automation.model_copy(update={"auto_failover": True, "candidates": [to]}),
        "metrics": config.metrics.model_copy(update={"listen": "127.0.0.1:0"}),
    })


def chaos_drill(estate: Estate, to: str, rate: float, journal: Journal, progress: Progress | None = None,
                settle: float = SETTLE_SECONDS, timeout: float | None = None, rebuild: bool = False) -> DrillResult:
    """Kill the home primary under load, wait for the automatic failover to ``to``, fail back, judge.

    ``rebuild``: when the kill left the home site holding a transaction no replica received (written
    to its binlog, never acknowledged to a client under semi-sync), rebuild it from the new primary
    on the way back instead of stopping there. The report says when that happened.
    """
    config = estate.config
    home = away_from_home(estate, to)
    log = load_log(estate)
    fault = fault_for(estate, log.parent)
    wait = timeout if timeout is not None else 3 * config.objectives.rto_seconds + 30
    load = client_for(estate, rate, log)
    controller = _Controller(controller_config(config, to), threading.Event(), threading.Event(), threading.Event())
    run = Run("drill", {"mode": "chaos", "to": to, "home": home, "load_rate": rate}, progress, journal)
    results: dict[str, FailoverResult] = {}
    faulted: dict[str, float] = {}
    rebuilt: list[str] = []  # what a rebuild on the way back discarded
    try:
        run.step("start the client load", load.start)
        run.step("start a controller with automatic failover", controller.start)
        run.step(f"inject the fault into {home}", lambda: _inject(fault, home, run.run_id, faulted))
        results["there"] = move(run, "wait for detection and the automatic failover",
                                lambda: _awaited(controller, to, wait))
        run.step(f"keep writing on {to} for {settle:g} s", lambda: {"slept": settle if not load.stop.wait(settle)
                                                                    else 0})
        controller.finish()
        run.step(f"heal {home}", lambda: fault.heal(home))
        faulted["healed"] = time.time()
        with holding_lease(config) as lease:
            options = Options(approvals=frozenset({"*"}), lease=lease)
            results["back"] = move(run, f"fail back to {home}", lambda: _back(
                estate, progress, journal, home, options, rebuild, rebuilt))
    except DrorchError as exc:
        controller.finish()
        load.finish()
        left = _left_behind(exc, home, to, faulted, results)
        finish_failed(run, config, journal, {"mode": "chaos", "to": to, "home": home}, left, results)
        if left is exc:
            raise
        raise left from exc
    finally:
        controller.finish()
        load.finish()
    truth = run.step("stop the load and check every acknowledged write", load.truth)
    figures = _from_fault(measured(results["there"], truth, load.log), controller, faulted["at"])
    objectives = judge(config.objectives.rto_seconds, config.objectives.rpo_seconds, figures)
    status = "succeeded" if all(v["met"] for v in objectives.values()) else "missed"
    if rebuilt:
        figures["rebuilt_home_discarding"] = rebuilt
    run.finish(status, {"mode": "chaos", "to": to, "home": home, "measured": figures, "objectives": objectives,
                        "failover_run": results["there"].run_id, "failback_run": results["back"].run_id,
                        "fault_at": faulted["at"], "outages": truth["outages"]})
    write_reports(config, journal, run.run_id)
    return DrillResult(run.run_id, "chaos", to, home, status, figures, objectives, results["there"].run_id,
                       results["back"].run_id)


def _back(estate: Estate, progress: Progress | None, journal: Journal, home: str, options: Options, rebuild: bool,
          rebuilt: list[str]) -> FailoverResult:
    done = failback(estate, progress, journal, home, options=options, rebuild_diverged=rebuild)
    if done.rebuilt is not None:
        rebuilt.extend(done.rebuilt.discarded or ["nothing"])
    return done.switchover


def _inject(fault: Fault, site: str, token: str, faulted: dict[str, float]) -> dict[str, Any]:
    faulted["at"] = time.time()
    return fault.inject(site, token)


def _left_behind(exc: DrorchError, home: str, to: str, faulted: dict[str, float],
                 results: dict[str, FailoverResult]) -> DrorchError:
    """After the fault, the error also says what the drill leaves broken and how to finish by hand.

    It is an OperationFailed then, whatever stopped the drill: the estate was changed (exit 3 would
    say it was not).
    """
    if "at" not in faulted or "back" in results:
        return exc
    broken = "" if "healed" in faulted else f"{home} is still broken by the drill's fault; heal it, then "
    if "there" in results:
        finish = f"{broken}run `drorch failback --to {home}` (the service runs on {to})"
    else:
        finish = f"{broken}check `drorch status`: no failover happened, so `drorch failover --to {to}` may be needed"
    return OperationFailed(f"{exc}; left: {finish}")


def _awaited(controller: _Controller, to: str, timeout: float) -> FailoverResult:
    if not controller.acted.wait(timeout) or controller.decided is None:
        raise OperationFailed(f"no automatic failover within {timeout:g} s of the fault: detection or automation "
                              "did not act (see `drorch status` and the controller's metrics)")
    result = controller.decided.decision.result
    if result is None:
        raise OperationFailed("the controller acted but left no failover result")
    if result.to_site != to:
        raise OperationFailed(f"the automatic failover went to {result.to_site}, not {to}")
    return result


def _from_fault(figures: dict[str, Any], controller: _Controller, fault_at: float) -> dict[str, Any]:
    """drorch's RTO counted from the fault (detection included), and the detection time itself."""
    decided = controller.decided
    assert decided is not None  # the failover step succeeded only with a decision
    detection = max(0.0, decided.verdicts.at - fault_at)
    rto = figures["drorch_rto_seconds"]
    return {**figures, "detection_seconds": round(detection, 3),
            "drorch_rto_seconds": None if rto is None else round(detection + rto, 3)}
