"""Running DR operations: the actions, and the orchestration that sequences them."""
