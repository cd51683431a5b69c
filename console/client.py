"""The gateway, as the console calls it: over gRPC, with the person's session token as
the credential, so the gateway decides every scope and names the person in its trail.

A refusal becomes a Refusal: its reason, the gateway's zh-CN message and, for bad
input, a zh-CN text per field it names, for the form to show beside that field."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from huiyuan.campaign.v1 import campaign_pb2_grpc
from huiyuan.gateway.v1 import gateway_pb2_grpc
from huiyuan.member.v1 import (
    card_pb2_grpc,
    care_pb2_grpc,
    loyalty_pb2_grpc,
    member_pb2_grpc,
    org_pb2_grpc,
    segment_pb2_grpc,
    tier_pb2_grpc,
)
from huiyuan.points.v1 import points_pb2_grpc
from huiyuan.wallet.v1 import count_card_pb2_grpc, wallet_pb2_grpc

TIMEOUT_S = 10.0
EXPORT_TIMEOUT_S = 120.0
# a segment's coupons are issued in pages of members by the gateway: a large segment takes
# a while, and a call cut short by its deadline leaves the issue half done
ISSUE_TIMEOUT_S = 120.0

# The codes by which the gateway says it did nothing: the request was refused before any
# change. Any other (DEADLINE_EXCEEDED, UNAVAILABLE, INTERNAL, CANCELLED, ABORTED, ...)
# leaves the outcome unknown - the change may have been made - so a form keeps its
# request_id for the person to send again, which the gateway then does at most once.
NOTHING_DONE = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)
UNKNOWN_OUTCOME = "结果未知：请再次提交以完成（不会重复执行）。"

# What a form says beside a field, by the violation's reason (the gateway's BadRequest
# names the field and its reason; its descriptions are English).
FIELD_WORDS = {
    "PASSWORD_TOO_SHORT": "密码至少 8 位。",
    "PASSWORD_TOO_LONG": "密码最多 128 位。",
    "PASSWORD_TOO_WEAK": "密码需同时包含字母和数字，且不能与账号相同。",
    "PASSWORD_INCORRECT": "当前密码不正确。",
    "PASSWORD_REQUIRED": "请输入密码。",
    "LOGIN_REQUIRED": "请输入账号。",
    "LOGIN_INVALID": "账号为 3–32 位字母、数字、点、下划线或连字符。",
    "NAME_REQUIRED": "请填写名称。",
    "TOO_LONG": "内容过长。",
    "PHONE_INVALID": "手机号应为 1 开头的 11 位数字。",
    "ROLE_INVALID": "请选择角色。",
    "ORG_LEVEL_INVALID": "角色与组织节点不符。",
    "ORG_PATH_INVALID": "组织路径格式不正确。",
    "BUDGET_NEGATIVE": "预算不能为负数。",
    "STEPS_REQUIRED": "请填写满减门槛与减免金额。",
    "THRESHOLD_BELOW_REDUCTION": "减免金额须大于 0 且不超过门槛。",
    "RATE_INVALID": "折扣须在 0.01% 到 99.99% 之间。",
    "STEPS_NOT_ASCENDING": "门槛须逐级递增。",
    "SCHEDULE_INVALID": "结束日期须晚于开始日期。",
    "NAME_TOO_LONG": "姓名最多 64 个字。",
    "NAME_INVALID": "姓名含有不可用的字符。",
    "DATE_INVALID": "日期不存在。",
    "DATE_OUT_OF_RANGE": "日期超出范围。",
    "TOO_MANY_TAGS": "标签最多 20 个。",
    "TAG_INVALID": "标签为 1–16 个字，不含逗号。",
    "PHONE_ALREADY_REGISTERED": "该手机号已注册为其他会员。",
    "QUANTITY_INVALID": "数量须为 1 或以上。",
    "REFUND_EXCEEDS_ORDER": "超出该商品可退数量。",
    "LINE_NOT_IN_ORDER": "订单中没有该商品。",
    "PERIOD_INVALID": "结束日期须不早于开始日期。",
    "CARD_NUMBER_TAKEN": "该卡号已被使用。",
    "CARD_NUMBER_INVALID": "卡号为 8–20 位数字。",
    "REASON_REQUIRED": "请填写原因。",
    "NOTE_TOO_LONG": "记录最多 500 字。",
}


@dataclass
class Refusal(Exception):
    code: grpc.StatusCode
    reason: str
    message: str  # the gateway's zh-CN message
    fields: dict[str, str] = field(default_factory=dict)  # field path -> zh-CN text
    # field path -> the violation's reason: one reason means different things on different
    # forms (RATE_INVALID of a campaign, of an offset policy), so a form may word it itself
    reasons: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code.name} {self.reason}: {self.message}"

    @property
    def nothing_done(self) -> bool:
        """Whether the answer says the request changed nothing (a form sent again is then
        a new request); otherwise it may have been done, and only the same request_id may
        be sent again."""
        return self.code in NOTHING_DONE


def refusal_of(error: grpc.aio.AioRpcError) -> Refusal:
    code = error.code()
    status = None
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:
        status = None
    reason, message, fields, reasons = "", "", {}, {}
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
            elif detail.Is(error_details_pb2.LocalizedMessage.DESCRIPTOR):
                localized = error_details_pb2.LocalizedMessage()
                detail.Unpack(localized)
                if localized.locale == "zh-CN":
                    message = localized.message
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                for violation in bad.field_violations:
                    fields.setdefault(violation.field, FIELD_WORDS.get(violation.reason, violation.description))
                    reasons.setdefault(violation.field, violation.reason)
    if not message:
        message = {
            grpc.StatusCode.UNAVAILABLE: "服务暂时不可用，请稍后重试。",
            grpc.StatusCode.DEADLINE_EXCEEDED: "服务响应超时，请稍后重试。",
        }.get(code, "操作未能完成。")
    return Refusal(code, reason, message, fields, reasons)


class Gateway:
    """One channel to the gateway for the console's process; the stubs of the services'
    methods the gateway passes through on the same address."""

    def __init__(self, address: str):
        self.address = address
        self.channel: grpc.aio.Channel | None = None

    async def open(self) -> None:
        self.channel = grpc.aio.insecure_channel(self.address)
        self.gateway = gateway_pb2_grpc.GatewayServiceStub(self.channel)
        self.campaign = campaign_pb2_grpc.CampaignServiceStub(self.channel)
        self.member = member_pb2_grpc.MemberServiceStub(self.channel)
        self.cards = card_pb2_grpc.CardServiceStub(self.channel)
        self.tiers = tier_pb2_grpc.TierServiceStub(self.channel)
        self.org = org_pb2_grpc.OrgServiceStub(self.channel)
        self.wallet = wallet_pb2_grpc.WalletServiceStub(self.channel)
        self.points = points_pb2_grpc.PointsServiceStub(self.channel)
        self.care = care_pb2_grpc.CareServiceStub(self.channel)
        self.segments = segment_pb2_grpc.SegmentServiceStub(self.channel)
        self.tier_programmes = loyalty_pb2_grpc.TierProgrammeServiceStub(self.channel)
        self.count_cards = count_card_pb2_grpc.CountCardServiceStub(self.channel)

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()

    async def call(self, method, request: Message, token: str = "", deadline_s: float = TIMEOUT_S):
        """One unary call (method: a bound stub method), as the person with token."""
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        try:
            return await method(request, metadata=metadata, timeout=deadline_s)
        except grpc.aio.AioRpcError as error:
            raise refusal_of(error) from None

    async def stream(self, method, request: Message, token: str) -> AsyncIterator:
        try:
            async for chunk in method(
                request, metadata=(("authorization", f"Bearer {token}"),), timeout=EXPORT_TIMEOUT_S
            ):
                yield chunk
        except grpc.aio.AioRpcError as error:
            raise refusal_of(error) from None
