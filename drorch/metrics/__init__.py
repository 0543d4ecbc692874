"""Prometheus metrics: their names are part of the product (dashboards and alerts use them)."""
