"""Alembic migrations for storage.models (async env, batch mode for SQLite)."""
