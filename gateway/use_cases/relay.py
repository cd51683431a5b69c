"""Calls to the services, and their refusals passed on to the gateway's caller.

A service's answer is passed on as it gave it: a refusal keeps its code, reason and
domain (CARD_LOST of member.huiyuan stays that), and its INTERNAL stays INTERNAL (an
errors.Internal, with the service's trace id): retrying would fail the same way. Only a
service that did not answer becomes UNAVAILABLE SERVICE_UNAVAILABLE, and one that refused
the gateway's own service token INTERNAL SERVICE_CREDENTIAL_REFUSED: the deployment's keys
are wrong, which the caller's UNAUTHENTICATED would blame on its API key. Ids the
services see for idempotency are derived from the caller's credential and request_id,
so a terminal's retry reaches every service as the same request.
"""

import asyncio
import hashlib
import logging
import time
from contextlib import asynccontextmanager

import grpc
from google.rpc import status_pb2

from gateway.domain.callers import Caller, operator_id
from huiyuan.campaign.v1 import campaign_pb2_grpc
from huiyuan.common.v1 import actor_pb2, rollup_pb2_grpc
from huiyuan.member.v1 import (
    card_pb2_grpc,
    care_pb2_grpc,
    loyalty_pb2_grpc,
    member_pb2_grpc,
    membership_pb2_grpc,
    org_pb2,
    org_pb2_grpc,
    payment_pin_pb2_grpc,
    segment_pb2_grpc,
    tier_pb2_grpc,
)
from huiyuan.points.v1 import points_pb2_grpc
from huiyuan.runtime import clients, service_auth
from huiyuan.runtime.errors import Internal, NotFound, Unavailable
from huiyuan.runtime.status import DETAILS_KEY, NO_ANSWER, from_status
from huiyuan.wallet.v1 import count_card_pb2_grpc, wallet_pb2_grpc


class Services:
    """Stubs of the services, on channels with the gateway's service token and a
    deadline on every call."""

    def __init__(self, timeout_s: float, identity):
        member_channel = clients.channel("member", timeout_s, identity)
        self.member = member_pb2_grpc.MemberServiceStub(member_channel)
        self.cards = card_pb2_grpc.CardServiceStub(member_channel)
        self.org = org_pb2_grpc.OrgServiceStub(member_channel)
        self.tiers = tier_pb2_grpc.TierServiceStub(member_channel)
        self.care = care_pb2_grpc.CareServiceStub(member_channel)
        self.pins = payment_pin_pb2_grpc.PaymentPinServiceStub(member_channel)
        self.memberships = membership_pb2_grpc.MembershipPlanServiceStub(member_channel)
        self.benefits = membership_pb2_grpc.BenefitServiceStub(member_channel)
        self.tier_programmes = loyalty_pb2_grpc.TierProgrammeServiceStub(member_channel)  # issue 40
        self.value_scores = loyalty_pb2_grpc.ValueScoreServiceStub(member_channel)
        self.segments = segment_pb2_grpc.SegmentServiceStub(member_channel)
        wallet_channel = clients.channel("wallet", timeout_s, identity)
        self.wallet = wallet_pb2_grpc.WalletServiceStub(wallet_channel)
        self.count_cards = count_card_pb2_grpc.CountCardServiceStub(wallet_channel)
        points_channel = clients.channel("points", timeout_s, identity)
        self.points = points_pb2_grpc.PointsServiceStub(points_channel)
        campaign_channel = clients.channel("campaign", timeout_s, identity)
        self.campaign = campaign_pb2_grpc.CampaignServiceStub(campaign_channel)
        self.org_names = OrgNames()  # the reports' names of org nodes (use_cases/report_runs.py)
        # each service's rollups, for the reports (use_cases/report_runs.py)
        self.rollups = {
            name: rollup_pb2_grpc.RollupServiceStub(channel)
            for name, channel in [
                ("member", member_channel),
                ("wallet", wallet_channel),
                ("points", points_channel),
                ("campaign", campaign_channel),
            ]
        }


NAMES_KEPT_S = 60.0  # a renamed store shows under its new name within a minute


class OrgNames:
    """path -> name of every org node, read from the member service and kept a minute, so
    a report names its node and children without asking each time; one per gateway
    (relay.Services). A node it does not know yet (a store opened a moment ago) is looked
    up on its own: a made-up path costs one lookup, never a read of the whole tree."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.read_at = -NAMES_KEPT_S
        self.lock = asyncio.Lock()
        self.reading: asyncio.Task | None = None

    async def _read(self, org) -> None:
        async with self.lock:  # one read for the calls that came meanwhile
            if time.monotonic() - self.read_at > NAMES_KEPT_S:
                self.names, self.read_at = await _all_names(org), time.monotonic()

    async def _read_quietly(self, org) -> None:
        try:
            await self._read(org)
        except Exception:  # the names stay a while older; the next report tries again (logged)
            logging.getLogger("huiyuan.gateway.reports").exception("reading the org tree's names failed")

    async def of(self, org, node: str) -> dict[str, str]:
        """The names; NOT_FOUND ORG_NODE_NOT_FOUND if node is not in the tree. Names a
        minute old are answered at once while they are read again in the background: a
        chain's tree is thousands of nodes, never read in a report's time but the first."""
        if not self.names:
            await self._read(org)
        elif time.monotonic() - self.read_at > NAMES_KEPT_S and (self.reading is None or self.reading.done()):
            self.reading = asyncio.create_task(self._read_quietly(org))
        if node not in self.names:
            try:
                async with relayed("member"):
                    found = (await org.GetOrgNode(org_pb2.GetOrgNodeRequest(path=node))).org_node
            except NotFound:
                raise NotFound("ORG_NODE_NOT_FOUND", "No such org node.", "没有此组织节点。", org_path=node) from None
            self.names = {**self.names, found.path: found.name}
            self.read_at = -NAMES_KEPT_S  # its new siblings too, at the next report
        return self.names


async def _all_names(org) -> dict[str, str]:
    names, request = {}, org_pb2.ListOrgNodesRequest(page_size=1000)
    while True:
        async with relayed("member"):
            page = await org.ListOrgNodes(request)
        names.update((n.path, n.name) for n in page.org_nodes)
        if not page.next_page_token:
            return names
        request.page_token = page.next_page_token


def actor(key_id: str, org_path: str) -> actor_pb2.Actor:
    """Who the services' audit trails name for a credential's calls: the key, never
    what a client claims."""
    return actor_pb2.Actor(operator_id=operator_id(key_id), org_path=org_path)


def actor_of(caller: Caller) -> actor_pb2.Actor:
    """The caller as the services' trails name it: a person as "person:<id>" (the
    gateway's trail names them so too), a key as "key:<id>"."""
    return actor_pb2.Actor(operator_id=caller.operator_id, org_path=caller.org_path)


def derived_id(key_id: str, request_id: str, step: str) -> str:
    return "gw-" + hashlib.sha256(f"{key_id}\0{request_id}\0{step}".encode()).hexdigest()[:40]


@asynccontextmanager
async def relayed(service: str):
    try:
        yield
    except grpc.aio.AioRpcError as error:
        details = dict(error.trailing_metadata() or ()).get(DETAILS_KEY)
        if details and error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:  # the service's own answer
            refusal = from_status(status_pb2.Status.FromString(details))
            if refusal.reason in service_auth.REFUSALS:
                raise Internal(
                    "SERVICE_CREDENTIAL_REFUSED",
                    f"The {service} service refused the gateway's "
                    f"credential ({refusal.reason}): the deployment's keys are wrong.",
                    "系统配置有误，请联系技术支持。",
                    service=service,
                ) from error
            raise refusal from error
        if error.code() in NO_ANSWER:
            raise Unavailable(
                "SERVICE_UNAVAILABLE",
                f"The {service} service did not answer; try again.",
                "服务暂时无响应，请重试。",
                service=service,
            ) from error
        # An answer without our details (UNKNOWN: an exception inside gRPC there): a bug.
        raise Internal(
            "SERVICE_FAILED",
            f"The {service} service failed ({error.code().name}).",
            "服务内部出错，请联系技术支持。",
            service=service,
        ) from error
