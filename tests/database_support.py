"""The test database as a URL, for the processes a test starts (an ingest, a worker, a manage.py command)."""

from django.db import connection


def database_url(*, port: int | None = None) -> str:
    """DATABASE_URL for the test database; with `port`, reached through that local port instead (a relay)."""
    db = connection.settings_dict
    credentials = f"{db['USER']}:{db['PASSWORD']}" if db.get("PASSWORD") else db["USER"]
    host, port = ("127.0.0.1", port) if port is not None else (db["HOST"] or "127.0.0.1", db["PORT"] or 5432)
    return f"postgres://{credentials}@{host}:{port}/{db['NAME']}"
