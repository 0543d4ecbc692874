"""Replication between sites: database roles, rejoining an old primary."""
