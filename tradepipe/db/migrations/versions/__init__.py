"""Alembic revisions, named <4-digit id>_<slug>.py; Alembic skips this file."""
