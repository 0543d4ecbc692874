"""A drill's ground truth: a client writing through the service name, and the check of what survived.

On the lab it is the lab's own client (``lab load``), in a thread. On any estate
it can be the estate's own client, named in the config (``ground_truth``): drorch
starts its ``load`` command, stops it with SIGTERM, and asks its ``verify``
command which of the logged writes the service holds. Either way the log has the
same shape, so outage and lost writes are computed the same way.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from drorch.config.drill_schema import GroundTruth as GroundTruthConfig
from drorch.drill.commands import Command, stop_group
from drorch.drill.harness import lab_of
from drorch.errors import InvalidInput, OperationFailed
from drorch.measure.groundtruth import GroundTruth, analyse, read_log
from drorch.providers.estate import Estate


class Client(Protocol):
    log: Path
    stop: threading.Event  # set once writing has stopped; drills sleep on it

    def start(self) -> dict[str, Any]: ...

    def finish(self) -> None: ...

    def truth(self) -> dict[str, Any]: ...


def client_for(estate: Estate, rate: float, log: Path) -> Client:
    """The configured client (``ground_truth``), else the lab's; InvalidInput when neither exists."""
    config = estate.config
    if config.ground_truth is not None:
        client = CommandClient(config.ground_truth, rate, log, config.source_path)
        client.check()
        return client
    try:
        lab = lab_of(estate)
    except InvalidInput:
        raise InvalidInput(f"{config.source_path or 'the config'}: ground_truth: this drill needs a client writing "
                           "through the service name, and this config is not the lab's; add `ground_truth: {load: "
                           "[...], verify: [...]}` naming the estate's own client (README: Drills on a real "
                           "estate)") from None
    return LabClient(lab, rate, log)


def _wait_written(log: Path, timeout: float, alive: Any) -> None:
    deadline = time.monotonic() + timeout
    while not (log.exists() and log.stat().st_size > 0):
        if time.monotonic() > deadline:
            raise OperationFailed(f"the client load wrote nothing within {timeout:g} s (log {log})")
        if not alive():
            raise OperationFailed(f"the client load ended before writing anything (log {log})")
        time.sleep(0.05)


class LabClient:
    """The lab's client writing ``rate`` orders per second through the service name, in a thread, into ``log``."""

    def __init__(self, lab: Any, rate: float, log: Path) -> None:
        from drorch.lab import load

        self.lab, self.log = lab, log
        self.stop = threading.Event()
        self._thread = threading.Thread(target=load.run, args=(lab, load.LoadSpec(rate, 3600.0, log), self.stop),
                                        name="drill-load", daemon=True)

    def start(self) -> dict[str, Any]:
        self._thread.start()
        _wait_written(self.log, 10.0, self._thread.is_alive)
        return {"log": str(self.log)}

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(timeout=30)

    def truth(self) -> dict[str, Any]:
        """Stop writing, then check every acknowledged write against the final primary."""
        from drorch.lab import load

        self.finish()
        found: GroundTruth = load.verify(self.lab, self.log)
        return found.to_json()


class CommandClient:
    """The estate's own client: the configured ``load`` command in the background, ``verify`` at the end."""

    def __init__(self, config: GroundTruthConfig, rate: float, log: Path, source: Path | None) -> None:
        cwd = source.parent if source is not None else Path.cwd()
        output = log.with_suffix(".out")
        self.config, self.log, self.source = config, log, source
        self.stop = threading.Event()
        self._load = Command("ground_truth.load", tuple(config.load), cwd, output).filled(rate=f"{rate:g}",
                                                                                        log=str(log))
        self._verify = Command("ground_truth.verify", tuple(config.verify), cwd, output).filled(log=str(log))
        self._process: subprocess.Popen[bytes] | None = None

    def check(self) -> None:
        self._load.check(self.source)
        self._verify.check(self.source)

    def start(self) -> dict[str, Any]:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        process = self._process = self._load.start()
        try:
            _wait_written(self.log, self.config.start_timeout_seconds, lambda: process.poll() is None)
        except OperationFailed:
            self.finish()
            raise
        return {"log": str(self.log), "pid": process.pid, "program": self._load.program}

    def finish(self) -> None:
        self.stop.set()
        if self._process is not None:
            stop_group(self._process, self.config.stop_timeout_seconds)

    def truth(self) -> dict[str, Any]:
        """Stop the client, then ask the estate's verifier which logged writes the service holds."""
        self.finish()
        printed = self._verify.run(self.config.verify_timeout_seconds)
        held = {line.strip() for line in printed.splitlines() if line.strip()}
        return analyse(read_log(self.log), held).to_json()
