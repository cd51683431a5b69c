"""Count cards (计次卡): the plans on sale, the cards sold (one row each, locked by
every change to it) and each card's immutable history."""

from sqlalchemy import bindparam, insert, select, update

from huiyuan.database import Transaction, send
from services.wallet.domain.count_cards import Card, Entry, EntryKind, Plan
from services.wallet.domain.reports import card_entry_contributions
from services.wallet.domain.top_ups import Tender
from services.wallet.storage.rollups import ROLLUPS
from services.wallet.storage.tables import count_card_entries, count_card_plans, count_cards

_LOCK_CARD = select(count_cards).where(count_cards.c.card_id == bindparam("card_id")).with_for_update()
_SAVE_CARD = (
    update(count_cards)
    .where(count_cards.c.card_id == bindparam("key"))
    .values(uses_left=bindparam("uses_left"), refund_time=bindparam("refund_time"))
)

# ---------------------------------------------------------------- plans


_INSERT_ENTRY = insert(count_card_entries)  # built once: compiled once


def _to_plan(row) -> Plan:
    return Plan(
        row.plan_id,
        row.name,
        row.org_path,
        row.uses,
        row.price_fen,
        row.valid_days,
        tuple(row.skus),
        row.start_time,
        row.end_time,
        row.ended_by or "",
    )


async def add_plan(tx: Transaction, plan: Plan, now) -> None:
    await tx.execute(
        insert(count_card_plans),
        {
            "plan_id": plan.plan_id,
            "name": plan.name,
            "org_path": plan.org_path,
            "uses": plan.uses,
            "price_fen": plan.price,
            "valid_days": plan.valid_days,
            "skus": list(plan.skus),
            "start_time": plan.start_time,
            "end_time": plan.end_time,
            "ended_by": None,
            "create_time": now,
        },
    )


async def plan_by_id(tx: Transaction, plan_id: str, lock: bool = False) -> Plan | None:
    query = select(count_card_plans).where(count_card_plans.c.plan_id == plan_id)
    row = (await tx.execute(query.with_for_update() if lock else query)).one_or_none()
    return None if row is None else _to_plan(row)


async def all_plans(tx: Transaction) -> list[Plan]:
    """Every plan, by name, then id."""
    return [
        _to_plan(r)
        for r in await tx.execute(
            select(count_card_plans).order_by(count_card_plans.c.name, count_card_plans.c.plan_id)
        )
    ]


async def set_plan_end(tx: Transaction, plan_id: str, end, ended_by: str) -> None:
    await tx.execute(
        update(count_card_plans).where(count_card_plans.c.plan_id == plan_id).values(end_time=end, ended_by=ended_by)
    )


# ---------------------------------------------------------------- cards


def _to_card(row) -> Card:
    return Card(
        row.card_id,
        row.member_id,
        row.plan_id,
        row.name,
        row.org_path,
        tuple(row.skus),
        row.uses_total,
        row.uses_left,
        row.price_fen,
        row.sold_store_path,
        Tender(row.tender),
        row.tender_reference,
        row.expire_time,
        row.create_time,
        row.refund_time,
    )


async def card_by_id(tx: Transaction, card_id: str, lock: bool = False) -> Card | None:
    query = _LOCK_CARD if lock else select(count_cards).where(count_cards.c.card_id == bindparam("card_id"))
    row = (await tx.execute(query, {"card_id": card_id})).one_or_none()
    return None if row is None else _to_card(row)


async def cards_of(tx: Transaction, member_id: str) -> list[Card]:
    """A member's cards, newest first."""
    rows = await tx.execute(
        select(count_cards).where(count_cards.c.member_id == member_id).order_by(count_cards.c.card_id.desc())
    )
    return [_to_card(r) for r in rows]


async def add_card(tx: Transaction, card: Card, operator_id: str) -> None:
    await tx.execute(
        insert(count_cards),
        {
            "card_id": card.card_id,
            "member_id": card.member_id,
            "plan_id": card.plan_id,
            "name": card.name,
            "org_path": card.org_path,
            "skus": list(card.skus),
            "uses_total": card.uses_total,
            "uses_left": card.uses_left,
            "price_fen": card.price,
            "sold_store_path": card.sold_store_path,
            "tender": card.tender.value,
            "tender_reference": card.tender_reference,
            "operator_id": operator_id,
            "expire_time": card.expire_time,
            "refund_time": None,
            "create_time": card.create_time,
        },
    )


async def post(tx: Transaction, card: Card, entry: Entry) -> None:
    """Save the card's new count and append the entry that says why, with what it adds
    to the reports' rollups: every count card entry is written here."""
    await send(tx, _SAVE_CARD, {"key": card.card_id, "uses_left": card.uses_left, "refund_time": card.refund_time})
    await send(
        tx,
        _INSERT_ENTRY,
        {
            "entry_id": entry.entry_id,
            "card_id": card.card_id,
            "member_id": card.member_id,
            "kind": entry.kind.value,
            "uses_delta": entry.uses_delta,
            "value_delta_fen": entry.value_delta,
            "uses_left_after": entry.uses_left_after,
            "value_left_after_fen": entry.value_left_after,
            "store_path": entry.store_path,
            "sold_store_path": card.sold_store_path,
            "sku": entry.sku,
            "operator_id": entry.operator_id,
            "memo": entry.memo,
            "undoes_entry_id": entry.undoes_entry_id or None,
            "post_time": entry.post_time,
        },
    )
    await ROLLUPS.record(
        tx,
        card_entry_contributions(
            entry.kind.value, entry.value_delta, card.sold_store_path, card.plan_id, entry.post_time
        ),
    )


# ---------------------------------------------------------------- entries


def _to_entry(row, undone_by: str = "") -> Entry:
    return Entry(
        row.entry_id,
        row.card_id,
        row.member_id,
        EntryKind(row.kind),
        row.uses_delta,
        row.value_delta_fen,
        row.uses_left_after,
        row.value_left_after_fen,
        row.store_path,
        row.sold_store_path,
        row.sku,
        row.operator_id,
        row.memo,
        row.undoes_entry_id or "",
        row.post_time,
        undone_by,
    )


async def undone_by(tx: Transaction, entry_ids: list[str]) -> dict[str, str]:
    """use entry id -> the id of the undo that gave it back."""
    if not entry_ids:
        return {}
    c = count_card_entries.c
    rows = await tx.execute(select(c.undoes_entry_id, c.entry_id).where(c.undoes_entry_id.in_(entry_ids)))
    return dict(rows.all())  # (a Result has keys(): dict() would take it for a mapping)


async def use_by_id(tx: Transaction, use_id: str) -> Entry | None:
    """The use (with the undo that gave it back, if any)."""
    c = count_card_entries.c
    row = (
        await tx.execute(select(count_card_entries).where(c.entry_id == use_id, c.kind == EntryKind.USE.value))
    ).one_or_none()
    if row is None:
        return None
    return _to_entry(row, (await undone_by(tx, [use_id])).get(use_id, ""))


async def entries_of(tx: Transaction, card_id: str, before_id: str | None, limit: int) -> list[Entry]:
    """A card's history, newest first (entry ids sort by time)."""
    c = count_card_entries.c
    query = select(count_card_entries).where(c.card_id == card_id)
    if before_id is not None:
        query = query.where(c.entry_id < before_id)
    rows = (await tx.execute(query.order_by(c.entry_id.desc()).limit(limit))).all()
    undone = await undone_by(tx, [r.entry_id for r in rows if r.kind == EntryKind.USE.value])
    return [_to_entry(r, undone.get(r.entry_id, "")) for r in rows]
