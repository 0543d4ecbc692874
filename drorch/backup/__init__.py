"""Backups and point-in-time recovery to an S3-compatible object store.

Replication copies mistakes as faithfully as data, so drorch keeps a second line:
consistent base backups of a replica (``base``), the primary's binary logs shipped
continuously (``binlogs``, parsed by ``events``), restore to any second or GTID
(``restore``), retention (``retention``), verification in a throw-away server
(``verify``), and what ``serve`` needs to run them on schedules and export their
RPO (``status``, ``schedule``). ``store`` is the one place that talks to S3;
``layout`` names every object.
"""
