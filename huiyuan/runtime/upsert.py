"""INSERT ... ON CONFLICT for the backend in use (PostgreSQL and SQLite share the API)."""

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_for(session: AsyncSession):
    """The dialect's insert(), which has on_conflict_do_nothing/do_update."""
    name = session.bind.dialect.name
    return postgresql.insert if name == "postgresql" else sqlite.insert
