"""Count cards (计次卡): plans, sales, uses, undone uses and refunds, in the wallet's
database. The rules are in count_card_rules.py.

Every change to a card locks its row first, then appends its entry: two cashiers
punching the last use of one card queue on the row, and the second is refused
(COUNT_CARD_USES_SHORT); the CHECK on uses_left says the same to the database. Entries
are never changed: an undo is a new entry naming the use it gives back, and the
unique undoes_entry_id lets that happen once.
"""

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update

from huiyuan.database.direct import send
from huiyuan.runtime.errors import FailedPrecondition, NotFound
from huiyuan.runtime.requests import check_in_scope, is_under, on_line
from huiyuan.runtime.validity import has_ended, shortened_end
from services.wallet.domain import count_cards as rules
from services.wallet.domain.count_cards import EntryKind
from services.wallet.domain.accounts import Tender
from services.wallet.storage.tables import count_card_entries, count_card_plans, count_cards


@dataclass
class Entry:
    entry_id: str
    card_id: str
    member_id: str
    kind: EntryKind
    uses_delta: int
    value_delta: int
    uses_left_after: int
    value_left_after: int
    store_path: str
    sold_store_path: str
    sku: str
    operator_id: str
    memo: str
    undoes_entry_id: str
    post_time: datetime
    undone_by_entry_id: str = ""  # of a use: the undo that gave it back


# ---------------------------------------------------------------- plans


def _to_plan(row) -> rules.Plan:
    return rules.Plan(row.plan_id, row.name, row.org_path, row.uses, row.price_fen, row.valid_days, tuple(row.skus),
                      row.start_time, row.end_time, row.ended_by or "")


async def create_plan(db, plan: rules.Plan, now) -> rules.Plan:
    plan = replace(plan, name=plan.name.strip())
    await db.execute(insert(count_card_plans), {
        "plan_id": plan.plan_id, "name": plan.name, "org_path": plan.org_path, "uses": plan.uses,
        "price_fen": plan.price, "valid_days": plan.valid_days, "skus": list(plan.skus), "start_time": plan.start_time,
        "end_time": plan.end_time, "ended_by": None, "create_time": now})
    return plan


async def plan_by_id(db, plan_id: str, lock: bool = False) -> rules.Plan:
    query = select(count_card_plans).where(count_card_plans.c.plan_id == plan_id)
    row = (await db.execute(query.with_for_update() if lock else query)).one_or_none()
    if row is None:
        raise NotFound("COUNT_CARD_PLAN_NOT_FOUND", "No such count card plan.", "次卡方案不存在。", plan_id=plan_id)
    return _to_plan(row)


async def plans(db, *, store_path: str = "", org_path: str = "", show_ended: bool = False, at) -> list[rules.Plan]:
    """At a store, the plans on sale there now; for a back office, its line's plans
    (every plan without org_path), ended ones only with show_ended."""
    found = [_to_plan(r) for r in await db.execute(
        select(count_card_plans).order_by(count_card_plans.c.name, count_card_plans.c.plan_id))]
    if store_path:
        return [p for p in found if p.on_sale(at) and is_under(store_path, p.org_path)]
    return [p for p in found
            if (not org_path or on_line(p.org_path, org_path)) and (show_ended or not has_ended(p.end_time, at))]


async def end_plan(db, plan_id: str, *, end_time, operator: str, actor_path: str, now) -> rules.Plan:
    """Stop selling a plan from end_time; the cards sold keep their terms."""
    plan = await plan_by_id(db, plan_id, lock=True)
    check_in_scope(plan.org_path, actor_path, "plan", "次卡方案")
    end = shortened_end(plan.start_time, plan.end_time, end_time, now, kind="plan", kind_zh="次卡方案")
    await db.execute(update(count_card_plans).where(count_card_plans.c.plan_id == plan_id)
                     .values(end_time=end, ended_by=operator))
    return replace(plan, end_time=end, ended_by=operator)


# ---------------------------------------------------------------- cards


def _to_card(row) -> rules.Card:
    return rules.Card(row.card_id, row.member_id, row.plan_id, row.name, row.org_path, tuple(row.skus),
                      row.uses_total, row.uses_left, row.price_fen, row.sold_store_path, Tender(row.tender),
                      row.tender_reference, row.expire_time, row.create_time, row.refund_time)


_LOCK_CARD = select(count_cards).where(count_cards.c.card_id == bindparam("card_id")).with_for_update()
_SAVE_CARD = update(count_cards).where(count_cards.c.card_id == bindparam("key")).values(
    uses_left=bindparam("uses_left"), refund_time=bindparam("refund_time"))


def card_not_found(card_id: str) -> NotFound:
    return NotFound("COUNT_CARD_NOT_FOUND", "No such count card.", "次卡不存在。", card_id=card_id)


async def card_by_id(db, card_id: str, lock: bool = False) -> rules.Card:
    query = _LOCK_CARD if lock else select(count_cards).where(count_cards.c.card_id == bindparam("card_id"))
    row = (await db.execute(query, {"card_id": card_id})).one_or_none()
    if row is None:
        raise card_not_found(card_id)
    return _to_card(row)


async def cards_of(db, member_id: str, usable_at: str = "", at=None) -> list[rules.Card]:
    """A member's cards, newest first; with usable_at, those usable at that store at `at`."""
    rows = await db.execute(select(count_cards).where(count_cards.c.member_id == member_id)
                            .order_by(count_cards.c.card_id.desc()))
    cards = [_to_card(r) for r in rows]
    return [c for c in cards if c.usable_at(usable_at, at)] if usable_at else cards


async def _post(db, card: rules.Card, kind: EntryKind, *, entry_id: str, uses_delta: int, value_delta: int,
                store_path: str, operator_id: str, now, sku: str = "", memo: str = "", undoes: str = "") -> Entry:
    """Save the card's new count and append the entry that says why."""
    await send(db, _SAVE_CARD, {"key": card.card_id, "uses_left": card.uses_left, "refund_time": card.refund_time})
    entry = Entry(entry_id, card.card_id, card.member_id, kind, uses_delta, value_delta, card.uses_left,
                  card.value_left, store_path, card.sold_store_path, sku, operator_id, memo[:200], undoes, now)
    await send(db, insert(count_card_entries), {
        "entry_id": entry_id, "card_id": card.card_id, "member_id": card.member_id, "kind": kind.value,
        "uses_delta": uses_delta, "value_delta_fen": value_delta, "uses_left_after": entry.uses_left_after,
        "value_left_after_fen": entry.value_left_after, "store_path": store_path,
        "sold_store_path": card.sold_store_path, "sku": sku, "operator_id": operator_id, "memo": entry.memo,
        "undoes_entry_id": undoes or None, "post_time": now})
    return entry


async def sell(db, *, plan_id: str, card_id: str, entry_id: str, member_id: str, store_path: str, tender: Tender,
               tender_reference: str, operator_id: str, now) -> rules.Card:
    plan = await plan_by_id(db, plan_id)
    card = rules.sell(plan, card_id=card_id, member_id=member_id, store_path=store_path, tender=tender,
                      tender_reference=tender_reference, now=now)
    await db.execute(insert(count_cards), {
        "card_id": card.card_id, "member_id": member_id, "plan_id": plan.plan_id, "name": card.name,
        "org_path": card.org_path, "skus": list(card.skus), "uses_total": card.uses_total,
        "uses_left": card.uses_left, "price_fen": card.price, "sold_store_path": store_path, "tender": tender.value,
        "tender_reference": tender_reference, "operator_id": operator_id, "expire_time": card.expire_time,
        "refund_time": None, "create_time": now})
    await _post(db, card, EntryKind.SALE, entry_id=entry_id, uses_delta=card.uses_total, value_delta=card.price,
                store_path=store_path, operator_id=operator_id, now=now,
                memo=f"{tender.value} {tender_reference}".strip())
    return card


async def use(db, *, card_id: str, entry_id: str, uses: int, sku: str, store_path: str, operator_id: str,
              now) -> tuple[Entry, rules.Card]:
    card = await card_by_id(db, card_id, lock=True)
    value = rules.use(card, uses=uses, sku=sku, store_path=store_path, now=now)
    entry = await _post(db, card, EntryKind.USE, entry_id=entry_id, uses_delta=-uses, value_delta=-value,
                        store_path=store_path, operator_id=operator_id, now=now, sku=sku)
    return entry, card


def _to_entry(row, undone_by: str = "") -> Entry:
    return Entry(row.entry_id, row.card_id, row.member_id, EntryKind(row.kind), row.uses_delta, row.value_delta_fen,
                 row.uses_left_after, row.value_left_after_fen, row.store_path, row.sold_store_path, row.sku,
                 row.operator_id, row.memo, row.undoes_entry_id or "", row.post_time, undone_by)


async def _undone_by(db, entry_ids: list[str]) -> dict[str, str]:
    """use entry id -> the id of the undo that gave it back."""
    if not entry_ids:
        return {}
    c = count_card_entries.c
    rows = await db.execute(select(c.undoes_entry_id, c.entry_id).where(c.undoes_entry_id.in_(entry_ids)))
    return {undone: undo for undone, undo in rows}


async def use_by_id(db, use_id: str) -> Entry:
    c = count_card_entries.c
    row = (await db.execute(select(count_card_entries).where(c.entry_id == use_id, c.kind == EntryKind.USE.value))
           ).one_or_none()
    if row is None:
        raise NotFound("COUNT_CARD_USE_NOT_FOUND", "No such use of a count card.", "次卡使用记录不存在。", use_id=use_id)
    return _to_entry(row, (await _undone_by(db, [use_id])).get(use_id, ""))


async def undo_use(db, *, use_id: str, entry_id: str, reason: str, operator_id: str, now) -> tuple[Entry, rules.Card]:
    """Give a use back to its card, at the store that punched it (its revenue goes back)."""
    found = await use_by_id(db, use_id)
    card = await card_by_id(db, found.card_id, lock=True)
    if (await _undone_by(db, [use_id])).get(use_id):  # read again under the card's lock
        raise FailedPrecondition("USE_ALREADY_UNDONE", "This use was already undone.", "该次使用已撤销。", use_id=use_id)
    value = rules.undo_use(card, -found.uses_delta)
    entry = await _post(db, card, EntryKind.USE_UNDONE, entry_id=entry_id, uses_delta=-found.uses_delta,
                        value_delta=value, store_path=found.store_path, operator_id=operator_id, now=now,
                        sku=found.sku, memo=reason, undoes=use_id)
    return entry, card


async def refund(db, *, card_id: str, entry_id: str, reason: str, operator_id: str, now) -> tuple[int, rules.Card]:
    """What is left of the card back to its tender, from the store that sold it."""
    card = await card_by_id(db, card_id, lock=True)
    uses_left = card.uses_left
    value = rules.refund(card, now)
    await _post(db, card, EntryKind.REFUND, entry_id=entry_id, uses_delta=-uses_left, value_delta=-value,
                store_path=card.sold_store_path, operator_id=operator_id, now=now, memo=reason)
    return value, card


async def entries_of(db, card_id: str, before_id: str | None, limit: int) -> list[Entry]:
    """A card's history, newest first (entry ids sort by time)."""
    await card_by_id(db, card_id)
    c = count_card_entries.c
    query = select(count_card_entries).where(c.card_id == card_id)
    if before_id is not None:
        query = query.where(c.entry_id < before_id)
    rows = (await db.execute(query.order_by(c.entry_id.desc()).limit(limit))).all()
    undone = await _undone_by(db, [r.entry_id for r in rows if r.kind == EntryKind.USE.value])
    return [_to_entry(r, undone.get(r.entry_id, "")) for r in rows]
