"""``drorch replicate dynamodb``: run drorch's own DynamoDB stream replicator, backfill, or compare the copies.

Thin: the replicator, backfill and verify are library calls (``drorch.replication.dynamodb``)
that ``drorch serve`` and the playbook actions run too.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import typer

from drorch.cli.output import ConfigOption, Output, OutputOption, emit_json, handle_errors, info

app = typer.Typer(help="drorch's own replication of data the clouds do not replicate for it.", no_args_is_help=True)


def _on_stop() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


class _Progress:
    """A line on stderr every ``every`` seconds while following, and each new error once."""

    def __init__(self, every: float = 10.0) -> None:
        self.every, self.last, self.shipped = every, time.monotonic(), 0
        self.errors: set[str] = set()

    def __call__(self, stats: Any) -> None:
        self.shipped += stats.shipped
        for error in stats.errors:
            if error not in self.errors:
                info(f"error: {error}")
        self.errors = set(stats.errors)
        for trimmed in stats.trimmed:
            info(f"warning: {trimmed}: records aged out unread; run with --backfill to bring the copies in step")
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            lags = [p.lag_seconds for p in stats.pairs if p.lag_seconds is not None]
            info(f"shipped {self.shipped} changes so far; lag {max(lags, default=0.0):.3f} s; "
                 f"{'caught up' if stats.caught_up else 'catching up'}")


@app.command("dynamodb")
@handle_errors
def dynamodb_command(
    table: str | None = typer.Option(None, "--table", help="only this data.dynamodb.tables entry (default: all)"),
    once: bool = typer.Option(False, "--once", help="ship everything available, then exit"),
    backfill: bool = typer.Option(False, "--backfill", help="first copy the sources' items (parallel Scan)"),
    verify: bool = typer.Option(False, "--verify", help="compare the copies (read-only unless with --once or "
                                                        "--backfill, which replicate first); exit 1 if they differ"),
    timeout: float = typer.Option(300.0, "--timeout", min=1.0, help="with --once: give up (exit 1) after this"),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """Carry `mode: stream` DynamoDB tables between sites from their streams, until SIGTERM or Ctrl-C.

    Takes the controller lease while it writes (exit 4 when another controller holds it).
    """
    from drorch.config import find_config_path, load_config
    from drorch.providers.estate import Estate
    from drorch.replication.dynamodb import direction
    from drorch.state.checkpoints import open_checkpoints

    cfg = load_config(find_config_path(config))
    direction.stream_tables(cfg, table)
    estate, checkpoints = Estate(cfg), open_checkpoints(cfg)
    document: dict[str, Any] = {}
    failed: list[str] = []
    if once or backfill or not verify:
        failed += _replicate(estate, checkpoints, table, once or verify, backfill, timeout, document, output)
    if verify:
        failed += _verify(estate, checkpoints, table, document, output)
    if output == Output.json:
        emit_json({**document, "ok": not failed, **({"problems": failed} if failed else {})})
    for problem in failed:
        info(f"error: {problem}")
    if failed:
        raise typer.Exit(1)


def _replicate(estate: Any, checkpoints: Any, table: str | None, once: bool, backfill: bool, timeout: float,
               document: dict[str, Any], output: Output) -> list[str]:
    from drorch.replication.dynamodb import backfill as backfilling
    from drorch.replication.dynamodb.replicator import Replicator
    from drorch.state.backends import holding_lease

    stop = _on_stop()
    with Replicator(estate, checkpoints, table) as replicator:
        replicator.check()  # bad input: exit 2 before the lease is taken or anything written
        with holding_lease(estate.config) as lease:
            if backfill:
                copied = backfilling.backfill(estate, checkpoints, table)
                document["backfill"] = [b.to_json() for b in copied]
                if output != Output.json:
                    for b in copied:
                        print(f"backfill {b.table} {b.source} -> {b.target}: {b.copied} copied, {b.repaired} "
                              f"repaired, {b.same} already the same, {b.newer} newer there, of {b.scanned} "
                              f"({b.seconds:.1f} s)")
            if not once:
                info(f"replicating {', '.join(t.name for t in replicator.tables)} until SIGTERM or Ctrl-C")
            total = replicator.run(stop, until_caught_up=once, max_seconds=timeout if once else None, lease=lease,
                                   on_round=_Progress())
    document["replication"] = total.to_json()
    if output != Output.json:
        for pair in total.pairs:
            print(f"{pair.table} {pair.source} -> {pair.target}: {pair.shipped} shipped, {pair.newer} already newer, "
                  f"{pair.echoes} echoes; lag {pair.lag_seconds} s; {'caught up' if pair.caught_up else 'behind'}")
        for seen in total.tracked:
            print(f"{seen.table} {seen.site}: tracked {seen.read} records, {seen.local_writes} local writes")
    if once and not stop.is_set() and not total.caught_up:
        return [*total.errors, f"not caught up within {timeout:g} s"]
    return []


def _verify(estate: Any, checkpoints: Any, table: str | None, document: dict[str, Any],
            output: Output) -> list[str]:
    from drorch.replication.dynamodb.verify import verify

    results = verify(estate, checkpoints, table)
    document["verify"] = [r.to_json() for r in results]
    if output != Output.json:
        for r in results:
            state = "same" if r.same else f"DIFFERENT in segments {r.differing_segments}"
            print(f"{r.table} {r.source} ({r.source_items} items) vs {r.target} ({r.target_items} items): {state}")
            for example in r.examples:
                print(f"  {example['problem']}: {example['key']}")
    return [f"{r.table}: {r.target} differs from {r.source}" for r in results if not r.same]
