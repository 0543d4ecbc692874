"""Backups and point-in-time recovery on the lab: real MariaDB, moto S3."""
