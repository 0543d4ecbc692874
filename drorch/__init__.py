"""drorch: a multi-cloud disaster-recovery orchestrator."""

__version__ = "0.1.0"
