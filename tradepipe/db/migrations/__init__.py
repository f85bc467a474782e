"""Alembic environment and revisions of the trading database (run via tradepipe.db.migrate)."""
