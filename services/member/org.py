"""Org tree use cases."""

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from huiyuan.runtime.clock import CHAIN_ZONE
from huiyuan.database.engines import under, violated_unique
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import AlreadyExists, FailedPrecondition, NotFound
from services.member import domain, storage
from services.member.storage import org_nodes


def org_not_found(path: str, field: str = "org_path") -> NotFound:
    return NotFound("ORG_NODE_NOT_FOUND", f"No org node at '{path}'.", f"组织节点 '{path}' 不存在。", path=path, field=field)


async def require_org_node(db, path: str, field: str = "org_path") -> domain.OrgNode:
    node = await storage.get_org_node(db, path)
    if node is None:
        raise org_not_found(path, field)
    return node


async def create_org_node(session: AsyncSession, parent_path: str, code: str, name: str,
                          kind: domain.OrgKind, time_zone: str) -> domain.OrgNode:
    parent = await require_org_node(session, parent_path, "parent_path") if parent_path else None
    if parent is None and (await session.execute(select(org_nodes.c.path).limit(1))).first():
        raise FailedPrecondition("ORG_KIND_MISPLACED", "The chain already has its HQ; give a parent_path.",
                                 "总部已存在,请指定上级节点。")
    expected = domain.child_kind(parent.kind if parent else None)
    if kind != expected:
        raise FailedPrecondition(
            "ORG_KIND_MISPLACED",
            f"A {kind.lower()} cannot sit under {parent.kind.lower() if parent else 'nothing'}; expected {expected.lower() if expected else 'no child'}.",
            "组织层级不符: 总部→区域→门店→终端。",
            expected=expected or "",
        )
    node = domain.OrgNode(
        path=f"{parent.path}/{code}" if parent else code, code=code, name=name, kind=kind,
        time_zone=time_zone or (parent.time_zone if parent else CHAIN_ZONE.key),
        parent_path=parent.path if parent else "", create_time=utcnow(),
    )
    try:
        await session.execute(insert(org_nodes).values(
            path=node.path, code=code, name=name, kind=kind.value, time_zone=node.time_zone,
            parent_path=node.parent_path or None, create_time=node.create_time))
    except IntegrityError as error:
        if violated_unique(error, "org_nodes", "path"):
            raise AlreadyExists("ORG_NODE_EXISTS", f"'{node.path}' exists already.", f"'{node.path}' 已存在。", path=node.path)
        raise
    return node


async def update_org_node(session: AsyncSession, path: str, changes: dict) -> domain.OrgNode:
    await require_org_node(session, path, "org_node.path")
    if changes:
        await session.execute(update(org_nodes).where(org_nodes.c.path == path).values(**changes))
    return await storage.get_org_node(session, path)


async def list_org_nodes(db, under_path: str, after: str | None, limit: int) -> list[domain.OrgNode]:
    query = select(org_nodes).order_by(org_nodes.c.path).limit(limit)
    if under_path:
        query = query.where(under(org_nodes.c.path, under_path))
    if after is not None:
        query = query.where(org_nodes.c.path > after)
    return [storage.to_org_node(r) for r in await db.execute(query)]
