"""OrgService: the gRPC face of the org tree (use_cases/org.py)."""

from huiyuan.database import Idempotency
from huiyuan.member.v1 import org_pb2, org_pb2_grpc
from huiyuan.runtime import pagination
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.requests import check_actor, check_mask, check_org_path, check_request_id
from huiyuan.runtime.server import ServiceContext
from services.member.domain.fields import check_name
from services.member.domain.org import ORG_CODE, OrgKind, check_time_zone
from services.member.servicers import convert
from services.member.use_cases import org


class OrgServicer(org_pb2_grpc.OrgServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency):
        self.database = ctx.database
        self.idempotency = idempotency

    async def CreateOrgNode(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        check_org_path(v, request.parent_path, "parent_path", required=False)
        node = request.org_node
        v.check(
            bool(ORG_CODE.match(node.code)),
            "org_node.code",
            "ORG_CODE_INVALID",
            "code must be 1 to 32 lower-case letters, digits or '-'",
        )
        name = check_name(v, node.name, "org_node.name")
        kind = convert.enum_name(org_pb2.OrgNodeKind, "ORG_NODE_KIND", node.kind)
        v.check(kind is not None, "org_node.kind", "ORG_KIND_REQUIRED", "kind must be HQ, REGION, STORE or TERMINAL")
        if node.time_zone:
            check_time_zone(v, node.time_zone, "org_node.time_zone")
        v.raise_if_any()

        async def work(tx):
            created = await org.create_org_node(tx, request.parent_path, node.code, name, OrgKind(kind), node.time_zone)
            return org_pb2.CreateOrgNodeResponse(org_node=convert.org_node(created))

        return await self.idempotency.run(request, org_pb2.CreateOrgNodeResponse, work)

    async def GetOrgNode(self, request, context):
        v = Violations()
        check_org_path(v, request.path, "path")
        v.raise_if_any()
        async with self.database.reading() as tx:
            return org_pb2.GetOrgNodeResponse(
                org_node=convert.org_node(await org.require_org_node(tx, request.path, "path"))
            )

    async def ListOrgNodes(self, request, context):
        v = Violations()
        check_org_path(v, request.under_path, "under_path", required=False)
        size = pagination.page_size(request.page_size, 100, 1000, v)
        fingerprint = pagination.fingerprint(request.under_path)
        after = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        async with self.database.reading() as tx:
            nodes = await org.list_org_nodes(tx, request.under_path, after[0] if after else None, size + 1)
        page, token = pagination.next_page(nodes, size, lambda node: [node.path], fingerprint)
        return org_pb2.ListOrgNodesResponse(org_nodes=[convert.org_node(n) for n in page], next_page_token=token)

    async def UpdateOrgNode(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        check_org_path(v, request.org_node.path, "org_node.path")
        paths = check_mask(v, request, {"name", "time_zone"})
        changes = {}
        if "name" in paths:
            changes["name"] = check_name(v, request.org_node.name, "org_node.name")
        if "time_zone" in paths:
            check_time_zone(v, request.org_node.time_zone, "org_node.time_zone")
            changes["time_zone"] = request.org_node.time_zone
        v.raise_if_any()

        async def work(tx):
            node = await org.update_org_node(tx, request.org_node.path, changes)
            return org_pb2.UpdateOrgNodeResponse(org_node=convert.org_node(node))

        return await self.idempotency.run(request, org_pb2.UpdateOrgNodeResponse, work)
