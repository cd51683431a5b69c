"""Card types and cards: issue, lose, find, freeze, replace, cancel. Every state change
writes a card event (who, where, when, why) in the same transaction."""

from huiyuan.database import Transaction
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.ids import new_id
from services.member.domain.cards import (
    Card,
    CardAction,
    CardEvent,
    CardType,
    card_not_found,
    card_type_not_found,
    new_card,
    next_card_state,
)
from services.member.storage import cards as stored
from services.member.use_cases.members import require_member
from services.member.use_cases.org import require_org_node
from services.member.use_cases.tiers import assign_tier, require_tier


async def require_card_type(tx: Transaction, card_type_id: str) -> CardType:
    card_type = await stored.get_card_type(tx, card_type_id)
    if card_type is None:
        raise card_type_not_found(card_type_id)
    return card_type


async def create_card_type(
    tx: Transaction,
    name: str,
    org_path: str,
    capabilities: list[str],
    form: str,
    default_tier_id: str,
    validity_days: int,
) -> CardType:
    await require_org_node(tx, org_path, "card_type.org_path")
    if default_tier_id:
        await require_tier(tx, default_tier_id)
    card_type = CardType(new_id("ct"), name, org_path, capabilities, form, default_tier_id, validity_days, utcnow())
    await stored.insert_card_type(tx, card_type)
    return card_type


async def list_card_types(tx: Transaction, usable_at_path: str, after: list | None, limit: int) -> list[CardType]:
    """By org_path, name and id; with usable_at_path, the types of that node and of its
    ancestors only."""
    ancestors = None
    if usable_at_path:
        parts = usable_at_path.split("/")
        ancestors = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return await stored.card_types_usable(tx, ancestors, after, limit)


async def issue_card(
    tx: Transaction,
    member_id: str,
    card_type_id: str,
    card_number: str,
    operator_id: str,
    org_path: str,
    replaces: str = "",
) -> Card:
    member = await require_member(tx, member_id)
    card_type = await require_card_type(tx, card_type_id)
    now = utcnow()
    card = new_card(card_type, member_id, card_number, org_path, now, replaces)
    await stored.insert_card(tx, card)
    reason = f"replaces {replaces}" if replaces else "issued"
    await stored.record_event(
        tx, card.card_number, CardAction.ISSUE, None, card.state, reason, operator_id, org_path, now
    )
    if card_type.default_tier_id and not member.tier_id:
        await assign_tier(tx, member_id, card_type.default_tier_id, f"card type {card_type.name}", operator_id)
    return card


async def require_card(tx: Transaction, card_number: str, *, for_update: bool = False) -> Card:
    card = await stored.get_card(tx, card_number, for_update=for_update)
    if card is None:
        raise card_not_found(card_number)
    return card


async def change_state(
    tx: Transaction, card_number: str, action: CardAction, reason: str, operator_id: str, org_path: str
) -> Card:
    """Apply a state change. The row lock (PostgreSQL) or the write lock (SQLite) and the
    conditional update make two concurrent changes of one card apply one at a time."""
    card = await require_card(tx, card_number, for_update=True)
    to_state = next_card_state(card, action)
    await stored.change_state(tx, card, to_state)
    await stored.record_event(tx, card_number, action, card.state, to_state, reason, operator_id, org_path, utcnow())
    card.state = to_state
    return card


async def replace_card(
    tx: Transaction, card_number: str, new_card_number: str, reason: str, operator_id: str, org_path: str
) -> tuple[Card, Card]:
    old = await change_state(tx, card_number, CardAction.REPLACE, reason, operator_id, org_path)
    new = await issue_card(
        tx, old.member_id, old.card_type_id, new_card_number, operator_id, org_path, replaces=old.card_number
    )
    await stored.set_replaced_by(tx, old.card_number, new.card_number)
    old.replaced_by_card_number = new.card_number
    return old, new


async def cards_of(tx: Transaction, member_id: str, after: list | None, limit: int) -> list[Card]:
    """A member's cards, newest first."""
    await require_member(tx, member_id)
    return await stored.cards_of(tx, member_id, after, limit)


async def card_events_of(tx: Transaction, card_number: str, after_id: int | None, limit: int) -> list[CardEvent]:
    await require_card(tx, card_number)
    return await stored.events_of(tx, card_number, after_id, limit)
