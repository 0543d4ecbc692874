"""MySQL and MariaDB: one client, with the SQL dialect behind a flavor adapter."""
