"""Declarative YAML playbooks: their model, loading and validation."""
