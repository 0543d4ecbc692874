"""DR drills: rehearse a failover and its failback under load, and measure them against ground truth."""
