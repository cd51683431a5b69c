"""Secrets at rest, what a till may see and spend, scope on every path, rate limits and
message sizes at the gateway (issue 36: items 1, 4 and 5)."""

import glob
import os

import grpc
import psycopg
import pytest

from huiyuan.gateway.v1 import gateway_pb2 as pb
from tests.support import STORE, refusal_of, rid
from tests.test_gateway import as_, chain, code_and_reason, issue  # noqa: F401 - chain: the fixture these tests share

# What the flows of this module wrote that must be nowhere at rest, searched for at the end.
SECRETS: dict[str, str] = {}


def test_a_replayed_key_issue_answers_with_the_key_s_id_and_not_the_key(chain):
    stub, hq_key = chain
    request = pb.IssueApiKeyRequest(request_id=rid(), org_path=STORE, role=pb.ROLE_STORE_MANAGER, label="店长")
    first = stub.IssueApiKey(request, metadata=as_(hq_key))
    assert first.api_key.startswith("hy_") and not first.secret_shown_before
    SECRETS["an issued key"] = first.api_key
    again = stub.IssueApiKey(request, metadata=as_(hq_key))
    assert (again.key_id, again.api_key, again.secret_shown_before) == (first.key_id, "", True)
    assert stub.ListOrders(pb.ListOrdersRequest(), metadata=as_(first.api_key)).orders is not None  # it works


def tables_holding(database_url: str, needle: str) -> list[str]:
    """The tables of every service (PostgreSQL: every schema; SQLite: every file) that
    hold needle anywhere: in a text or JSON column, or inside a serialised message."""
    raw = needle.encode()
    if database_url.startswith("sqlite"):
        folder = os.path.dirname(database_url.removeprefix("sqlite:///"))
        return [path for path in glob.glob(f"{folder}/*.db*") if raw in open(path, "rb").read()]
    found = []
    with psycopg.connect(database_url, autocommit=True) as db:
        tables = db.execute("SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = "
                            "'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')").fetchall()
        assert {schema for schema, _ in tables} >= {"member", "wallet", "points", "campaign", "gateway"}
        for schema, table in tables:
            # a row as text shows bytea as \x and hex digits
            (count,) = db.execute(f'SELECT count(*) FROM "{schema}"."{table}" AS r WHERE r::text LIKE %s '
                                  f"OR r::text LIKE %s", (f"%{needle}%", f"%{raw.hex()}%")).fetchone()
            if count:
                found.append(f"{schema}.{table}")
    return found


def test_no_secret_of_these_flows_is_kept_anywhere(chain, database_url):
    """Run last in this module: every key and PIN its flows made, searched for in every
    table of every service. Checked by hand too (docs/security.md lists each table)."""
    assert SECRETS, "the flows above ran"
    for what, secret in SECRETS.items():
        assert tables_holding(database_url, secret) == [], what
