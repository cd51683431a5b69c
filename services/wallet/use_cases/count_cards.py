"""Count cards (计次卡): sales, uses, undone uses and refunds, in the wallet's
database. The rules are in domain/count_cards.py.

Every change to a card locks its row first, then appends its entry: two cashiers
punching the last use of one card queue on the row, and the second is refused
(COUNT_CARD_USES_SHORT); the CHECK on uses_left says the same to the database. Entries
are never changed: an undo is a new entry naming the use it gives back, and the
unique undoes_entry_id lets that happen once.
"""

from huiyuan.database import Transaction
from services.wallet.domain import count_cards as rules
from services.wallet.domain.count_cards import Card, Entry, EntryKind
from services.wallet.domain.top_ups import Tender
from services.wallet.storage import count_cards
from services.wallet.use_cases.count_card_plans import plan_by_id


async def card_by_id(tx: Transaction, card_id: str, lock: bool = False) -> Card:
    card = await count_cards.card_by_id(tx, card_id, lock)
    if card is None:
        raise rules.card_not_found(card_id)
    return card


async def cards_of(tx: Transaction, member_id: str, usable_at: str = "", at=None) -> list[Card]:
    """A member's cards, newest first; with usable_at, those usable at that store at `at`."""
    cards = await count_cards.cards_of(tx, member_id)
    return [c for c in cards if c.usable_at(usable_at, at)] if usable_at else cards


async def sell(
    tx: Transaction,
    *,
    plan_id: str,
    card_id: str,
    entry_id: str,
    member_id: str,
    store_path: str,
    tender: Tender,
    tender_reference: str,
    operator_id: str,
    now,
) -> Card:
    plan = await plan_by_id(tx, plan_id)
    card = rules.sell(
        plan,
        card_id=card_id,
        member_id=member_id,
        store_path=store_path,
        tender=tender,
        tender_reference=tender_reference,
        now=now,
    )
    await count_cards.add_card(tx, card, operator_id)
    await count_cards.post(
        tx,
        card,
        rules.entry(
            card,
            EntryKind.SALE,
            entry_id=entry_id,
            uses_delta=card.uses_total,
            value_delta=card.price,
            store_path=store_path,
            operator_id=operator_id,
            now=now,
            memo=f"{tender.value} {tender_reference}".strip(),
        ),
    )
    return card


async def use(
    tx: Transaction, *, card_id: str, entry_id: str, uses: int, sku: str, store_path: str, operator_id: str, now
) -> tuple[Entry, Card]:
    card = await card_by_id(tx, card_id, lock=True)
    value = rules.use(card, uses=uses, sku=sku, store_path=store_path, now=now)
    entry = rules.entry(
        card,
        EntryKind.USE,
        entry_id=entry_id,
        uses_delta=-uses,
        value_delta=-value,
        store_path=store_path,
        operator_id=operator_id,
        now=now,
        sku=sku,
    )
    await count_cards.post(tx, card, entry)
    return entry, card


async def use_by_id(tx: Transaction, use_id: str) -> Entry:
    found = await count_cards.use_by_id(tx, use_id)
    if found is None:
        raise rules.use_not_found(use_id)
    return found


async def undo_use(
    tx: Transaction, *, use_id: str, entry_id: str, reason: str, operator_id: str, now
) -> tuple[Entry, Card]:
    """Give a use back to its card, at the store that punched it (its revenue goes back)."""
    found = await use_by_id(tx, use_id)
    card = await card_by_id(tx, found.card_id, lock=True)
    if (await count_cards.undone_by(tx, [use_id])).get(use_id):  # read again under the card's lock
        raise rules.already_undone(use_id)
    value = rules.undo_use(card, -found.uses_delta)
    entry = rules.entry(
        card,
        EntryKind.USE_UNDONE,
        entry_id=entry_id,
        uses_delta=-found.uses_delta,
        value_delta=value,
        store_path=found.store_path,
        operator_id=operator_id,
        now=now,
        sku=found.sku,
        memo=reason,
        undoes=use_id,
    )
    await count_cards.post(tx, card, entry)
    return entry, card


async def refund(
    tx: Transaction, *, card_id: str, entry_id: str, reason: str, operator_id: str, now
) -> tuple[int, Card]:
    """What is left of the card back to its tender, from the store that sold it."""
    card = await card_by_id(tx, card_id, lock=True)
    uses_left = card.uses_left
    value = rules.refund(card, now)
    await count_cards.post(
        tx,
        card,
        rules.entry(
            card,
            EntryKind.REFUND,
            entry_id=entry_id,
            uses_delta=-uses_left,
            value_delta=-value,
            store_path=card.sold_store_path,
            operator_id=operator_id,
            now=now,
            memo=reason,
        ),
    )
    return value, card


async def entries_of(tx: Transaction, card_id: str, before_id: str | None, limit: int) -> list[Entry]:
    """A card's history, newest first."""
    await card_by_id(tx, card_id)
    return await count_cards.entries_of(tx, card_id, before_id, limit)
