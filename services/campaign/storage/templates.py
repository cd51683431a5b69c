"""Coupon templates kept: a row per template with its terms as a JSON body; and the
templates a quote prices coupons with, kept parsed in the process."""

from datetime import datetime

from sqlalchemy import bindparam, insert, select

from huiyuan.database import Database, Transaction
from huiyuan.runtime.requests import on_line
from services.campaign.domain.coupons import CouponKind, Template
from services.campaign.storage.tables import coupon_templates

_TEMPLATE_BODIES = select(coupon_templates.c.template_id, coupon_templates.c.body).where(
    coupon_templates.c.template_id.in_(bindparam("template_ids", expanding=True))
)


def to_body(t: Template) -> dict:
    return {
        **t.__dict__,
        "kind": t.kind.value,
        "valid_from": t.valid_from.isoformat() if t.valid_from else None,
        "valid_until": t.valid_until.isoformat() if t.valid_until else None,
    }


def from_body(body: dict) -> Template:
    body = dict(body)
    for key in ("valid_from", "valid_until"):
        body[key] = datetime.fromisoformat(body[key]) if body[key] else None
    return Template(**{**body, "kind": CouponKind(body["kind"])})


async def add(tx: Transaction, t: Template, now: datetime) -> None:
    await tx.execute(
        insert(coupon_templates),
        {"template_id": t.template_id, "campaign_id": t.campaign_id, "body": to_body(t), "create_time": now},
    )


async def under(tx: Transaction, org_path: str, after: str | None, limit: int) -> list[Template]:
    """Templates whose scope covers or lies under org_path, by id (oldest first): as
    campaigns are listed, their scope read from the body."""
    q = select(coupon_templates.c.template_id, coupon_templates.c.body)
    if after is not None:
        q = q.where(coupon_templates.c.template_id > after)
    rows = (await tx.execute(q.order_by(coupon_templates.c.template_id))).all()
    found = [from_body(r.body) for r in rows if not org_path or on_line(r.body["org_path"], org_path)]
    return found[:limit]


async def get(tx: Transaction, template_id: str) -> Template | None:
    body = (
        await tx.execute(select(coupon_templates.c.body).where(coupon_templates.c.template_id == template_id))
    ).scalar()
    return None if body is None else from_body(body)


# Templates parsed, by id, for quotes. A template's terms never change once it is made
# (nothing updates coupon_templates), so a quote need not read and parse them again:
# they were a tenth of a quote's CPU (bench/campaign.py).
_quoted_templates: dict[str, Template] = {}
_QUOTED_TEMPLATES_MAX = 10_000


async def for_quote(database: Database, template_ids: set[str]) -> dict[str, Template]:
    """The templates of these ids (and maybe others), read where not kept yet."""
    missing = sorted(template_ids - _quoted_templates.keys())
    if len(_quoted_templates) + len(missing) > _QUOTED_TEMPLATES_MAX:  # kept small: start again
        _quoted_templates.clear()
        missing = sorted(template_ids)
    if missing:
        for row in await database.rows(_TEMPLATE_BODIES, {"template_ids": missing}):
            _quoted_templates[row.template_id] = from_body(row.body)
    return _quoted_templates
