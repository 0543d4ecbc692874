"""Where drorch keeps what must survive it: the journal of every run (and, later, the lease)."""
