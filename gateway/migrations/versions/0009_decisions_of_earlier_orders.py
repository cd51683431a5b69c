"""orders decided before 0008 read as the sagas read them now; a refund's update_time

Before 0008 a checkout logged its decision as three saga-log entries (lookup, quote,
offset) and kept no refusal beside a refused order. The sagas now read one decision
entry, and replay a refusal as it was heard: an order still in flight across the
upgrade, a refund of an order paid before it, a retry of an order refused before it
would otherwise be decided again, fail, or answer a refusal as if it were a receipt.
So each such order gets its decision entry (the three messages, as the fields 1, 2 and
3 of a CheckoutDecision: protobuf's wire format, which never changes), and each
refused order the refusal its terminal heard then, in the gateway's domain.

A refund gets update_time, when a run last took it on (gateway/use_cases/leases.py), for the
recovery loop: the longest left first, and none again before its delay.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 11:00:00

"""

import sqlalchemy as sa
from alembic import op
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from huiyuan.gateway.v1 import gateway_pb2

revision = "0009"
down_revision = "0008"

saga_log = sa.table(
    "saga_log", sa.column("order_id"), sa.column("step"), sa.column("payload", sa.LargeBinary), sa.column("log_time")
)
orders = sa.table(
    "orders",
    sa.column("order_id"),
    sa.column("state"),
    sa.column("response", sa.LargeBinary),
    sa.column("refusal", sa.LargeBinary),
)
BATCH = 1000
BAD_INPUT = {"TENDERS_DO_NOT_ADD_UP": "tenders", "POINTS_OVER_CAP": "points_to_use"}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field of a protobuf message, as its wire format writes it."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _refusal(order_id: str, reason: str, amount_due_fen: int) -> bytes:
    """The refusal the terminal heard for a refused order, as the gateway says it now."""

    def pack(message):
        packed = any_pb2.Any()
        packed.Pack(message)
        return packed

    metadata = {"order_id": order_id}
    if reason == "TENDERS_DO_NOT_ADD_UP":
        metadata["amount_due_fen"] = str(amount_due_fen)
    en = f"The checkout was refused ({reason}); nothing was charged."
    details = [
        error_details_pb2.ErrorInfo(reason=reason, domain="gateway.huiyuan", metadata=metadata),
        error_details_pb2.LocalizedMessage(locale="en", message=en),
        error_details_pb2.LocalizedMessage(locale="zh-CN", message="结账未成功，本单未扣任何款项。"),
    ]
    code = code_pb2.FAILED_PRECONDITION
    if reason in BAD_INPUT:
        code = code_pb2.INVALID_ARGUMENT
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=BAD_INPUT[reason], reason=reason, description=en)
                ]
            )
        )
    return status_pb2.Status(code=code, message=en, details=[pack(d) for d in details]).SerializeToString()


def upgrade() -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("update_time", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE refunds SET update_time = create_time")
    with op.batch_alter_table("refunds") as batch:
        batch.alter_column("update_time", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.drop_index("ix_refunds_state_create_time")
        batch.create_index("ix_refunds_state_update_time", ["state", "update_time"], unique=False)

    bind = op.get_bind()
    decided = sa.select(saga_log.c.order_id).where(saga_log.c.step == "decision")
    while True:  # in batches: a chain's whole history of orders
        parts = bind.execute(
            sa.select(saga_log.c.order_id, saga_log.c.step, saga_log.c.payload, saga_log.c.log_time).where(
                saga_log.c.step.in_(["lookup", "quote", "offset"]),
                saga_log.c.order_id.in_(
                    sa.select(saga_log.c.order_id)
                    .where(saga_log.c.step == "quote", saga_log.c.order_id.not_in(decided))
                    .order_by(saga_log.c.order_id)
                    .limit(BATCH)
                ),
            )
        ).all()
        if not parts:
            break
        logged: dict[str, dict] = {}
        for order_id, step, payload, log_time in parts:
            logged.setdefault(order_id, {"log_time": log_time})[step] = payload
        bind.execute(
            saga_log.insert(),
            [
                {
                    "order_id": order_id,
                    "step": "decision",
                    "log_time": steps["log_time"],
                    "payload": _field(1, steps.get("lookup", b""))
                    + _field(2, steps["quote"])
                    + _field(3, steps.get("offset", b"")),
                }
                for order_id, steps in logged.items()
            ],
        )
    for order_id, response in bind.execute(
        sa.select(orders.c.order_id, orders.c.response).where(orders.c.state == "REFUSED", orders.c.refusal.is_(None))
    ).all():
        answer = gateway_pb2.CheckoutResponse.FromString(response)
        bind.execute(
            orders.update()
            .where(orders.c.order_id == order_id)
            .values(refusal=_refusal(order_id, answer.refusal_reason or "ORDER_REFUSED", answer.amount_due_fen))
        )


def downgrade() -> None:
    op.execute("DELETE FROM saga_log WHERE step = 'decision'")
    with op.batch_alter_table("refunds") as batch:
        batch.drop_index("ix_refunds_state_update_time")
        batch.create_index("ix_refunds_state_create_time", ["state", "create_time"], unique=False)
        batch.drop_column("update_time")
