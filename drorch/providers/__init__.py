"""Thin, typed wrappers over each cloud service and database drorch talks to."""
