"""The org tree: HQ, regions, stores and terminals."""

from huiyuan.database import Transaction
from huiyuan.runtime.clock import utcnow
from services.member.domain.org import OrgKind, OrgNode, new_node, org_not_found
from services.member.storage import org as stored


async def require_org_node(tx: Transaction, path: str, field: str = "org_path") -> OrgNode:
    node = await stored.get(tx, path)
    if node is None:
        raise org_not_found(path, field)
    return node


async def create_org_node(
    tx: Transaction, parent_path: str, code: str, name: str, kind: OrgKind, time_zone: str
) -> OrgNode:
    parent = await require_org_node(tx, parent_path, "parent_path") if parent_path else None
    chain_has_hq = await stored.any_node(tx) if parent is None else True
    node = new_node(parent, chain_has_hq, code, name, kind, time_zone, utcnow())
    await stored.insert_node(tx, node)
    return node


async def update_org_node(tx: Transaction, path: str, changes: dict) -> OrgNode:
    await require_org_node(tx, path, "org_node.path")
    if changes:
        await stored.update_node(tx, path, changes)
    return await require_org_node(tx, path, "org_node.path")


async def list_org_nodes(tx: Transaction, under_path: str, after: str | None, limit: int) -> list[OrgNode]:
    return await stored.nodes(tx, under_path, after, limit)
