"""Card types, cards and their events."""

from sqlalchemy import and_, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from huiyuan.database import Transaction, violated_unique
from services.member.domain.cards import (
    Card,
    CardAction,
    CardEvent,
    CardState,
    CardType,
    card_number_taken,
)
from services.member.storage.tables import card_events, card_types, cards


# prefix: how a join labelled the columns (the lookup's "card_").
def to_card(row, prefix: str = "") -> Card:
    def col(name):
        return getattr(row, prefix + name)

    return Card(
        col("card_number"),
        col("member_id"),
        col("card_type_id"),
        CardState(col("state")),
        col("issued_org_path"),
        col("issue_time"),
        col("expire_time"),
        col("replaces_card_number"),
        col("replaced_by_card_number"),
    )


def to_card_type(row) -> CardType:
    return CardType(
        row.card_type_id,
        row.name,
        row.org_path,
        list(row.capabilities),
        row.form,
        row.default_tier_id or "",
        row.validity_days,
        row.create_time,
    )


async def get_card_type(tx: Transaction, card_type_id: str) -> CardType | None:
    row = (await tx.execute(select(card_types).where(card_types.c.card_type_id == card_type_id))).one_or_none()
    return to_card_type(row) if row else None


async def insert_card_type(tx: Transaction, card_type: CardType) -> None:
    await tx.execute(
        insert(card_types).values(
            card_type_id=card_type.card_type_id,
            name=card_type.name,
            org_path=card_type.org_path,
            capabilities=card_type.capabilities,
            form=card_type.form,
            default_tier_id=card_type.default_tier_id or None,
            validity_days=card_type.validity_days,
            create_time=card_type.create_time,
        )
    )


_CARD_TYPE_ORDER = (card_types.c.org_path, card_types.c.name, card_types.c.card_type_id)


async def card_types_usable(
    tx: Transaction, ancestors: list[str] | None, after: list | None, limit: int
) -> list[CardType]:
    """By org_path, name and id; those of the nodes `ancestors` (all: None), after the
    position `after` ([org_path, name, id])."""
    query = select(card_types).order_by(*_CARD_TYPE_ORDER).limit(limit)
    if ancestors is not None:
        query = query.where(card_types.c.org_path.in_(ancestors))
    if after is not None:
        query = query.where(tuple_(*_CARD_TYPE_ORDER) > tuple_(*after))
    return [to_card_type(r) for r in await tx.execute(query)]


async def get_card(tx: Transaction, card_number: str, *, for_update: bool = False) -> Card | None:
    query = select(cards).where(cards.c.card_number == card_number)
    if for_update:
        query = query.with_for_update()
    row = (await tx.execute(query)).one_or_none()
    return to_card(row) if row else None


async def cards_of(tx: Transaction, member_id: str, after: list | None, limit: int) -> list[Card]:
    """Newest first (issue_time, latest first, then card_number); those after the
    position `after` ([issue_time, card_number])."""
    query = select(cards).where(cards.c.member_id == member_id)
    if after is not None:
        issued, number = after
        query = query.where(
            or_(cards.c.issue_time < issued, and_(cards.c.issue_time == issued, cards.c.card_number > number))
        )
    return [
        to_card(r)
        for r in await tx.execute(query.order_by(cards.c.issue_time.desc(), cards.c.card_number).limit(limit))
    ]


async def insert_card(tx: Transaction, card: Card) -> None:
    try:
        await tx.execute(
            insert(cards).values(
                card_number=card.card_number,
                member_id=card.member_id,
                card_type_id=card.card_type_id,
                state=card.state.value,
                issued_org_path=card.issued_org_path,
                issue_time=card.issue_time,
                expire_time=card.expire_time,
                replaces_card_number=card.replaces_card_number,
                replaced_by_card_number="",
            )
        )
    except IntegrityError as error:
        if violated_unique(error, "cards", "card_number"):
            raise card_number_taken(card.card_number) from None
        raise


async def change_state(tx: Transaction, card: Card, to_state: CardState) -> None:
    """The card (locked) from its state to to_state: only if it is still in it."""
    result = await tx.execute(
        update(cards)
        .where(cards.c.card_number == card.card_number, cards.c.state == card.state.value)
        .values(state=to_state.value)
    )
    assert result.rowcount == 1, "card changed under its row lock"


async def set_replaced_by(tx: Transaction, card_number: str, new_card_number: str) -> None:
    await tx.execute(
        update(cards).where(cards.c.card_number == card_number).values(replaced_by_card_number=new_card_number)
    )


async def record_event(
    tx: Transaction,
    card_number: str,
    action: CardAction,
    from_state: CardState | None,
    to_state: CardState,
    reason: str,
    operator_id: str,
    org_path: str,
    when,
) -> None:
    await tx.execute(
        insert(card_events).values(
            card_number=card_number,
            action=action.value,
            from_state=from_state.value if from_state else None,
            to_state=to_state.value,
            reason=reason,
            operator_id=operator_id,
            org_path=org_path,
            event_time=when,
        )
    )


async def events_of(tx: Transaction, card_number: str, after_id: int | None, limit: int) -> list[CardEvent]:
    """Oldest first; those after the event after_id."""
    query = select(card_events).where(card_events.c.card_number == card_number)
    if after_id is not None:
        query = query.where(card_events.c.event_id > after_id)
    rows = await tx.execute(query.order_by(card_events.c.event_id).limit(limit))
    return [
        CardEvent(
            r.event_id,
            r.card_number,
            r.action,
            r.from_state,
            r.to_state,
            r.reason,
            r.operator_id,
            r.org_path,
            r.event_time,
        )
        for r in rows
    ]
