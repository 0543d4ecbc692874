"""Which ``drorch serve`` acts: the one holding the controller lease.

Several controllers may watch the estate (on several hosts with the etcd lease);
all probe and publish, but only the lease holder fails over automatically, as
only Patroni's leader-key holder promotes. A controller that loses the lease
stands by and tries again every round.
"""

from __future__ import annotations

import secrets

from drorch.errors import LeaseHeld, OperationFailed
from drorch.state import handover
from drorch.state.lease import Keeper, LeaseLost, LeaseStore, this_controller


class Leadership:
    def __init__(self, store: LeaseStore, ttl: float, holder: str | None = None) -> None:
        # host:pid names the process; the suffix tells apart two controllers one process may run (tests do)
        self.store, self.ttl = store, ttl
        self.holder = holder or f"{this_controller()}/serve-{secrets.token_hex(2)}"
        self.keeper: Keeper | None = None
        self.why_not = "not tried yet"

    def refresh(self) -> bool:
        """True when this controller holds the lease now (acquiring it when it is free).

        A manual run's hand-over request comes first: the lease is released and not taken again
        while the request counts (see ``drorch.state.handover``).
        """
        try:
            wanted = handover.wanted_by(self.store, self.ttl)
        except OperationFailed as exc:  # the store does not answer: the lease check below says the same
            wanted, self.why_not = None, str(exc)
        if wanted is not None and wanted != self.holder:
            if self.keeper is not None:
                self.keeper.close()
                self.keeper = None
            self.why_not = f"handed the lease over to a manual run ({wanted})"
            return False
        if self.keeper is not None:
            try:
                self.keeper.check()
                return True
            except LeaseLost as exc:
                self.keeper.close()
                self.keeper, self.why_not = None, str(exc)
        try:
            self.keeper = Keeper(self.store, self.holder, self.ttl)
            return True
        except (LeaseHeld, OperationFailed) as exc:  # held elsewhere, or the lease store does not answer
            self.why_not = str(exc)
            return False

    def close(self) -> None:
        if self.keeper is not None:
            self.keeper.close()
            self.keeper = None
