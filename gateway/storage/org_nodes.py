"""The org tree as the operator's tool reads it from the member service's database, with
no service running (use_cases/bootstrap.py): the kind of a node. Named here by its table
and two columns only; the member service owns and migrates it."""

from sqlalchemy import column, select, table

from huiyuan.database.engines import make_async_engine

org_nodes = table("org_nodes", column("path"), column("kind"))


async def kind_at(member_database_url: str, path: str) -> str | None:
    engine = make_async_engine(member_database_url, "member")
    try:
        async with engine.connect() as tx:
            return (await tx.execute(select(org_nodes.c.kind).where(org_nodes.c.path == path))).scalar()
    finally:
        await engine.dispose()
