"""The org tree's statements."""

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from huiyuan.database import Transaction, under, violated_unique
from services.member.domain.org import OrgKind, OrgNode, node_exists
from services.member.storage.tables import org_nodes


def to_org_node(row) -> OrgNode:
    return OrgNode(
        row.path, row.code, row.name, OrgKind(row.kind), row.time_zone, row.parent_path or "", row.create_time
    )


_NODE = select(org_nodes).where(org_nodes.c.path == bindparam("path"))  # built once: every visit looks up its store


async def get(tx: Transaction, path: str) -> OrgNode | None:
    row = (await tx.execute(_NODE, {"path": path})).one_or_none()
    return to_org_node(row) if row else None


async def any_node(tx: Transaction) -> bool:
    """Has the chain a node yet (its HQ)?"""
    return bool((await tx.execute(select(org_nodes.c.path).limit(1))).first())


async def paths_existing(tx: Transaction, paths: set[str]) -> set[str]:
    """Those of paths that are nodes of the tree."""
    found: set[str] = set()
    wanted = list(paths)
    for i in range(0, len(wanted), 1000):
        chunk = wanted[i : i + 1000]
        found |= set((await tx.execute(select(org_nodes.c.path).where(org_nodes.c.path.in_(chunk)))).scalars())
    return found


async def insert_node(tx: Transaction, node: OrgNode) -> None:
    try:
        await tx.execute(
            insert(org_nodes).values(
                path=node.path,
                code=node.code,
                name=node.name,
                kind=node.kind.value,
                time_zone=node.time_zone,
                parent_path=node.parent_path or None,
                create_time=node.create_time,
            )
        )
    except IntegrityError as error:
        if violated_unique(error, "org_nodes", "path"):
            raise node_exists(node.path) from None
        raise


async def update_node(tx: Transaction, path: str, changes: dict) -> None:
    await tx.execute(update(org_nodes).where(org_nodes.c.path == path).values(**changes))


async def nodes(tx: Transaction, under_path: str, after: str | None, limit: int) -> list[OrgNode]:
    """By path; those under under_path (all: ""), after the path `after`."""
    query = select(org_nodes).order_by(org_nodes.c.path).limit(limit)
    if under_path:
        query = query.where(under(org_nodes.c.path, under_path))
    if after is not None:
        query = query.where(org_nodes.c.path > after)
    return [to_org_node(r) for r in await tx.execute(query)]


async def names(tx: Transaction) -> dict[str, str]:
    """Every node's name by its path (a chain has some thousand)."""
    return dict((await tx.execute(select(org_nodes.c.path, org_nodes.c.name))).all())
