"""The switchover drill: a planned failover to a site and back, with a client writing throughout.

The estate ends as it started, the standby back at its warm size (the failback does it).
"""

from __future__ import annotations

from drorch.drill.archive import write_reports
from drorch.drill.client import client_for
from drorch.drill.harness import DrillResult, finish_failed, judge, load_log, measured, move
from drorch.engine.executor import Options
from drorch.engine.failback import failback
from drorch.engine.failover import PREAPPROVED, FailoverResult, failover
from drorch.engine.run import Progress, Run
from drorch.errors import DrorchError, InvalidInput
from drorch.providers.estate import Estate
from drorch.state.journal import Journal

SETTLE_SECONDS = 3.0  # load keeps running on the new primary before going back: the client must see it work


def away_from_home(estate: Estate, to: str) -> str:
    """The home primary; InvalidInput when ``to`` is not another site."""
    config = estate.config
    config.site(to)
    home = config.primary_site
    if to == home:
        raise InvalidInput(f"--to {to}: that is the home primary; a drill moves the service away and back "
                           f"(choose one of {', '.join(s for s in config.sites if s != home)})")
    return home


def drill(estate: Estate, to: str, rate: float, journal: Journal, progress: Progress | None = None,
          options: Options = PREAPPROVED, settle: float = SETTLE_SECONDS, schedule: str | None = None) -> DrillResult:
    """Fail over to ``to`` and back while the client (the estate's, or the lab's) writes ``rate`` per second.

    ``schedule`` names the configured drill that ``serve`` is running (None: run by hand).
    """
    config = estate.config
    home = away_from_home(estate, to)
    load = client_for(estate, rate, load_log(estate))
    run = Run("drill", {"mode": "switchover", "to": to, "home": home, "load_rate": rate, "schedule": schedule},
              progress, journal)
    results: dict[str, FailoverResult] = {}
    try:
        run.step("start the client load", load.start)
        results["there"] = move(run, f"fail over to {to}", lambda: failover(
            estate, to, progress, journal, trigger="drill", options=options))
        run.step(f"keep writing on {to} for {settle:g} s",
                 lambda: {"slept": settle if not load.stop.wait(settle) else 0})
        results["back"] = move(run, f"fail back to {home}", lambda: failback(
            estate, progress, journal, home, options=options).switchover)
    except DrorchError as exc:
        load.finish()
        finish_failed(run, config, journal, {"mode": "switchover", "to": to, "schedule": schedule}, exc, results)
        raise
    finally:
        load.finish()
    truth = run.step("stop the load and check every acknowledged write", load.truth)
    figures = measured(results["there"], truth, load.log)
    objectives = judge(config.objectives.rto_seconds, config.objectives.rpo_seconds, figures)
    status = "succeeded" if all(v["met"] for v in objectives.values()) else "missed"
    summary = {"mode": "switchover", "to": to, "home": home, "schedule": schedule, "measured": figures,
               "objectives": objectives,
               "failover_run": results["there"].run_id, "failback_run": results["back"].run_id,
               "outages": truth["outages"]}  # wall-clock windows of the client's failed writes, for the timeline
    run.finish(status, summary)
    write_reports(config, journal, run.run_id)
    return DrillResult(run.run_id, "switchover", to, home, status, figures, objectives, results["there"].run_id,
                       results["back"].run_id)
