"""What every drill mode shares: moves that must succeed, the figures against ground truth, and the verdict.

drorch's own figures (RTO timed by its steps, RPO proven by GTID or heartbeats) are
put next to what the client saw: the longest time its writes failed, and the
acknowledged writes missing from the final primary. Both are judged against the
objectives, so an estimate that flatters itself shows up as a failed drill.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drorch.config.schema import Config
from drorch.engine.failover import FailoverResult
from drorch.engine.run import Run
from drorch.errors import InvalidInput, OperationFailed
from drorch.measure.groundtruth import read_log
from drorch.providers.estate import Estate
from drorch.state.journal import Journal


@dataclass(frozen=True)
class DrillResult:
    run_id: str
    mode: str
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
        return {"run_id": self.run_id, "mode": self.mode, "to": self.to, "home": self.home,
                "status": self.status, "measured": self.measured, "objectives": self.objectives,
                "missed": self.missed, "failover_run": self.failover_run, "failback_run": self.failback_run,
                "notes": self.notes}


def lab_of(estate: Estate) -> Any:
    """The lab this config belongs to (its client, faults and scratch servers serve drills that name none)."""
    from drorch.lab.control import open_lab

    source = estate.config.source_path
    if source is None or not (source.parent / "lab.json").exists():
        raise InvalidInput(f"{source or 'the config'} is not the lab's (no lab.json beside it)")
    return open_lab(source.parent)


def load_log(estate: Estate) -> Path:
    return estate.config.resolve_path(Path("drills")) / f"load-{int(time.time())}.jsonl"


def move(run: Run, name: str, act: Callable[[], FailoverResult]) -> FailoverResult:
    """Run ``act`` as one step of the drill; the step fails unless the move succeeded."""
    holder: dict[str, FailoverResult] = {}

    def step() -> dict[str, Any]:
        result: FailoverResult = act()
        holder["result"] = result
        if result.status != "succeeded":
            raise OperationFailed(f"{name}: {result.status} ({result.error}); see `drorch runs show {result.run_id}`")
        return {"run_id": result.run_id, "rto_seconds": result.rto_seconds, "rpo_seconds": result.rpo_seconds}

    run.step(name, step)
    return holder["result"]


def measured(there: FailoverResult, truth: dict[str, Any], log: Path) -> dict[str, Any]:
    lost = set(truth["lost_refs"])
    lost_times = [r.done for r in read_log(log) if r.client_ref in lost]
    return {
        "drorch_rto_seconds": there.rto_seconds, "drorch_rpo_seconds": there.rpo_seconds,
        "client_outage_seconds": truth["outage_seconds"], "acknowledged_writes": truth["acknowledged"],
        "attempted_writes": truth["attempted"], "lost_acknowledged_writes": truth["lost_acknowledged_writes"],
        "lost_span_seconds": round(max(lost_times) - min(lost_times), 3) if lost_times else 0.0,
    }


def judge(rto: float, rpo: float, figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each objective against the worse of drorch's figure and the client's."""
    worst_rto = max(figures["client_outage_seconds"], figures["drorch_rto_seconds"] or 0.0)
    lost_span = figures["lost_span_seconds"] if figures["lost_acknowledged_writes"] else 0.0
    worst_rpo = max(lost_span, figures["drorch_rpo_seconds"] or 0.0)
    lost_any = figures["lost_acknowledged_writes"] > 0  # even one lost write breaks a zero-loss objective
    return {"rto": {"objective_seconds": rto, "measured_seconds": round(worst_rto, 3), "met": worst_rto <= rto},
            "rpo": {"objective_seconds": rpo, "measured_seconds": round(worst_rpo, 3),
                    "met": worst_rpo <= rpo and not (lost_any and rpo == 0)}}


def run_id_of(result: FailoverResult | None) -> str | None:
    return None if result is None else result.run_id


def finish_failed(run: Run, config: Config, journal: Journal, summary: dict[str, Any], error: Exception,
                  moves: dict[str, FailoverResult]) -> None:
    """Journal a drill that stopped on ``error`` (with the moves it made) and write its reports."""
    from drorch.drill.archive import write_reports

    run.finish("failed", {**summary, "error": str(error), "failover_run": run_id_of(moves.get("there")),
                          "failback_run": run_id_of(moves.get("back"))})
    write_reports(config, journal, run.run_id)
