"""Helpers for calling the member service in tests."""

import glob
import itertools
import os
import random
import uuid

import grpc
import psycopg
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from huiyuan.common.v1 import actor_pb2
from huiyuan.member.v1 import card_pb2, card_pb2_grpc, member_pb2, member_pb2_grpc, org_pb2, org_pb2_grpc, tier_pb2_grpc

_phones = itertools.count(1)
STORE = "hq/east/sh-001"
ACTOR = actor_pb2.Actor(operator_id="cashier-07", org_path=f"{STORE}/pos-1")


def rid() -> str:
    return str(uuid.uuid4())


def new_phone() -> str:
    """A phone no other test in this run uses."""
    return f"139{uuid.uuid4().int % 10**8:08d}"


class Stubs:
    def __init__(self, channel):
        self.org = org_pb2_grpc.OrgServiceStub(channel)
        self.member = member_pb2_grpc.MemberServiceStub(channel)
        self.card = card_pb2_grpc.CardServiceStub(channel)
        self.tier = tier_pb2_grpc.TierServiceStub(channel)

    def register(self, name="测试会员", phone=None, request_id=None, **fields):
        return self.member.RegisterMember(
            member_pb2.RegisterMemberRequest(
                request_id=request_id or rid(),
                channel=member_pb2.REGISTRATION_CHANNEL_STORE,
                actor=ACTOR,
                member=member_pb2.Member(name=name, phone=phone or new_phone(), **fields),
            )
        ).member


def ensure_org(stubs: Stubs) -> None:
    """HQ, a region with a store and its terminal, and another region with a store
    (fixed request ids: safe to call again)."""
    for parent, code, kind in [
        ("", "hq", org_pb2.ORG_NODE_KIND_HQ),
        ("hq", "east", org_pb2.ORG_NODE_KIND_REGION),
        ("hq/east", "sh-001", org_pb2.ORG_NODE_KIND_STORE),
        (STORE, "pos-1", org_pb2.ORG_NODE_KIND_TERMINAL),
    ]:
        stubs.org.CreateOrgNode(
            org_pb2.CreateOrgNodeRequest(
                request_id=f"org-{code}",
                parent_path=parent,
                org_node=org_pb2.OrgNode(code=code, name=code.upper(), kind=kind, time_zone="Asia/Shanghai"),
            )
        )
    for parent, code, name, kind in [
        ("hq", "south", "华南", org_pb2.ORG_NODE_KIND_REGION),
        ("hq/south", "gz-001", "广州一店", org_pb2.ORG_NODE_KIND_STORE),
        ("hq/south/gz-001", "pos-1", "收银1", org_pb2.ORG_NODE_KIND_TERMINAL),
    ]:
        stubs.org.CreateOrgNode(
            org_pb2.CreateOrgNodeRequest(
                request_id=f"org-{parent.replace('/', '.')}-{code}"
                if kind == org_pb2.ORG_NODE_KIND_TERMINAL
                else f"org-{code}",
                parent_path=parent,
                org_node=org_pb2.OrgNode(code=code, name=name, kind=kind, time_zone="Asia/Shanghai"),
            )
        )


def refusal(call, *args, **kwargs):
    """Call an RPC that must fail; returns (code, reason, violations by field)."""
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)
    return refusal_of(caught.value)


def refusal_of(error: grpc.RpcError, domain: str | None = None):
    """(code, reason, violations by field) of a failed call, checking its rich status:
    ErrorInfo in the service's domain, LocalizedMessage in en and zh-CN."""
    status = rpc_status.from_call(error)
    assert status is not None, f"no rich status on {error.code()}"
    reason, violations, locales = "", {}, set()
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
            assert info.domain.endswith(".huiyuan") and (domain is None or info.domain == domain), info.domain
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = {v.field: v.reason for v in bad.field_violations}
        elif detail.Is(error_details_pb2.LocalizedMessage.DESCRIPTOR):
            message = error_details_pb2.LocalizedMessage()
            detail.Unpack(message)
            locales.add(message.locale)
    assert locales == {"en", "zh-CN"}, locales
    return error.code(), reason, violations


def card_type(stubs: Stubs, validity_days=0) -> str:
    return stubs.card.CreateCardType(
        card_pb2.CreateCardTypeRequest(
            request_id=rid(),
            card_type=card_pb2.CardType(
                name="储值卡", org_path="hq", form=card_pb2.CARD_FORM_INDIVIDUAL, validity_days=validity_days
            ),
        )
    ).card_type.card_type_id


def pos_args(*argv: str):
    """`huiyuan pos ARGV...` parsed as the command line parses it (SystemExit for a
    mistyped one)."""
    from huiyuan_cli import cli

    return cli.parser().parse_args(["pos", *argv])


def tables_holding(database_url: str, needle: str) -> list[str]:
    """The tables of every service (PostgreSQL: every schema; SQLite: every file) that
    hold needle anywhere: in a text or JSON column, or inside a serialised message."""
    raw = needle.encode()
    if database_url.startswith("sqlite"):
        folder = os.path.dirname(database_url.removeprefix("sqlite:///"))
        return [path for path in glob.glob(f"{folder}/*.db*") if raw in open(path, "rb").read()]
    found = []
    with psycopg.connect(database_url, autocommit=True) as db:
        tables = db.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = "
            "'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        assert {schema for schema, _ in tables} >= {"member", "wallet", "points", "campaign", "gateway"}
        # A PIN (six digits) counts where it stands alone, not inside a longer run of digits:
        # a time's microseconds or an amount written after it was drawn are not a PIN kept.
        alone = f"(^|[^0-9]){needle}([^0-9]|$)" if needle.isdigit() else None
        for schema, table in tables:
            # a row as text shows bytea as \x and hex digits
            (count,) = db.execute(
                f'SELECT count(*) FROM "{schema}"."{table}" AS r WHERE '
                + ("r::text ~ %s" if alone else "r::text LIKE %s")
                + " OR r::text LIKE %s",
                (alone or f"%{needle}%", f"%{raw.hex()}%"),
            ).fetchone()
            if count:
                found.append(f"{schema}.{table}")
    return found


def fresh_pin(database_url) -> str:
    """A PIN no table holds yet (nor one of the first guesses), so that finding it later means it was kept."""
    while True:
        pin = f"{random.randrange(10**6):06d}"
        if len(set(pin)) > 2 and not tables_holding(database_url, pin):
            return pin
