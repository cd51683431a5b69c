"""Card types and cards: issue, lose, find, freeze, replace, cancel. Every state change
writes a card event (who, where, when, why) in the same transaction."""

from datetime import timedelta

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from huiyuan.database.engines import violated_unique
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import AlreadyExists, FailedPrecondition, NotFound
from huiyuan.runtime.ids import new_id
from services.member import domain, storage
from services.member.members import require_member
from services.member.org import require_org_node
from services.member.storage import card_events, card_types, cards
from services.member.tiers import assign_tier, require_tier


def _card_type_row_to_dict(row) -> dict:
    return row._asdict()


async def require_card_type(db, card_type_id: str) -> dict:
    row = (await db.execute(select(card_types).where(card_types.c.card_type_id == card_type_id))).one_or_none()
    if row is None:
        raise NotFound("CARD_TYPE_NOT_FOUND", "No such card type.", "卡类型不存在。", card_type_id=card_type_id)
    return _card_type_row_to_dict(row)


async def create_card_type(session: AsyncSession, values: dict) -> dict:
    await require_org_node(session, values["org_path"], "card_type.org_path")
    if values["default_tier_id"]:
        await require_tier(session, values["default_tier_id"])
    values = {**values, "card_type_id": new_id("ct"), "create_time": utcnow(),
              "default_tier_id": values["default_tier_id"] or None}
    await session.execute(insert(card_types).values(**values))
    return values


_CARD_TYPE_ORDER = (card_types.c.org_path, card_types.c.name, card_types.c.card_type_id)


async def list_card_types(db, usable_at_path: str, after: list | None, limit: int) -> list[dict]:
    """By org_path, name and id; those after the position `after` ([org_path, name, id])."""
    query = select(card_types).order_by(*_CARD_TYPE_ORDER).limit(limit)
    if usable_at_path:  # its own and its ancestors' types
        parts = usable_at_path.split("/")
        ancestors = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        query = query.where(card_types.c.org_path.in_(ancestors))
    if after is not None:
        query = query.where(tuple_(*_CARD_TYPE_ORDER) > tuple_(*after))
    return [_card_type_row_to_dict(r) for r in await db.execute(query)]


async def _insert_card(session: AsyncSession, card: domain.Card) -> None:
    try:
        await session.execute(insert(cards).values(
            card_number=card.card_number, member_id=card.member_id, card_type_id=card.card_type_id,
            state=card.state.value, issued_org_path=card.issued_org_path, issue_time=card.issue_time,
            expire_time=card.expire_time, replaces_card_number=card.replaces_card_number,
            replaced_by_card_number=""))
    except IntegrityError as error:
        if violated_unique(error, "cards", "card_number"):
            raise AlreadyExists("CARD_NUMBER_TAKEN", "This card number is already issued.", "该卡号已被使用。",
                                card_number=card.card_number)
        raise


async def _record_event(session, card_number, action, from_state, to_state, reason, operator_id, org_path, when):
    await session.execute(insert(card_events).values(
        card_number=card_number, action=action.value, from_state=from_state.value if from_state else None,
        to_state=to_state.value, reason=reason, operator_id=operator_id, org_path=org_path, event_time=when))


async def issue_card(session: AsyncSession, member_id: str, card_type_id: str, card_number: str,
                     operator_id: str, org_path: str, replaces: str = "") -> domain.Card:
    member = await require_member(session, member_id)
    card_type = await require_card_type(session, card_type_id)
    if not domain.is_under(org_path, card_type["org_path"]):
        raise FailedPrecondition("CARD_TYPE_OUT_OF_SCOPE", "This card type is not issued at this org node.",
                                 "该卡类型不适用于当前门店。", card_type_id=card_type_id)
    now = utcnow()
    validity = card_type["validity_days"]
    card = domain.Card(
        card_number=card_number or domain.new_card_number(), member_id=member_id, card_type_id=card_type_id,
        state=domain.CardState.ACTIVE, issued_org_path=org_path, issue_time=now,
        expire_time=now + timedelta(days=validity) if validity else None, replaces_card_number=replaces,
    )
    await _insert_card(session, card)
    reason = f"replaces {replaces}" if replaces else "issued"
    await _record_event(session, card.card_number, domain.CardAction.ISSUE, None, card.state, reason, operator_id, org_path, now)
    if card_type["default_tier_id"] and not member.tier_id:
        await assign_tier(session, member_id, card_type["default_tier_id"], f"card type {card_type['name']}", operator_id)
    return card


async def require_card(db, card_number: str, *, for_update: bool = False) -> domain.Card:
    card = await storage.get_card(db, card_number, for_update=for_update)
    if card is None:
        raise NotFound("CARD_NOT_FOUND", "No such card.", "卡号不存在。", card_number=card_number)
    return card


async def change_state(session: AsyncSession, card_number: str, action: domain.CardAction,
                       reason: str, operator_id: str, org_path: str) -> domain.Card:
    """Apply a state change. The row lock (PostgreSQL) or the write lock (SQLite) and the
    conditional update make two concurrent changes of one card apply one at a time."""
    card = await require_card(session, card_number, for_update=True)
    to_state = domain.next_card_state(card, action)
    now = utcnow()
    result = await session.execute(update(cards).where(cards.c.card_number == card_number, cards.c.state == card.state.value)
                                   .values(state=to_state.value))
    assert result.rowcount == 1, "card changed under its row lock"
    await _record_event(session, card_number, action, card.state, to_state, reason, operator_id, org_path, now)
    card.state = to_state
    return card


async def replace_card(session: AsyncSession, card_number: str, new_card_number: str, reason: str,
                       operator_id: str, org_path: str) -> tuple[domain.Card, domain.Card]:
    old = await change_state(session, card_number, domain.CardAction.REPLACE, reason, operator_id, org_path)
    new = await issue_card(session, old.member_id, old.card_type_id, new_card_number, operator_id, org_path,
                           replaces=old.card_number)
    await session.execute(update(cards).where(cards.c.card_number == old.card_number)
                          .values(replaced_by_card_number=new.card_number))
    old.replaced_by_card_number = new.card_number
    return old, new


async def card_events_of(db, card_number: str, after_id: int | None, limit: int) -> list[tuple[int, object]]:
    await require_card(db, card_number)
    query = select(card_events).where(card_events.c.card_number == card_number)
    if after_id is not None:
        query = query.where(card_events.c.event_id > after_id)
    rows = await db.execute(query.order_by(card_events.c.event_id).limit(limit))
    return [(r.event_id, r) for r in rows]
