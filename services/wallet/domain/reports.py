"""The figures of reports: cross-store settlement and a store's day. Count cards
(计次卡) are prepaid value too: a card sold at one store and used at another settles as
stored value does, and their sales are in the till's takings."""

from collections.abc import Iterable
from dataclasses import dataclass

from huiyuan.runtime.requests import is_under
from services.wallet.domain.count_cards import EntryKind as CardEntry
from services.wallet.domain.postings import EntryKind
from services.wallet.domain.top_ups import Tender

SPENDS = [EntryKind.CONSUMPTION.value, EntryKind.CONSUMPTION_REFUND.value]
CARD_USES = [CardEntry.USE.value, CardEntry.USE_UNDONE.value]
CARD_MONEY = [CardEntry.SALE.value, CardEntry.REFUND.value]


@dataclass
class StorePosition:
    store_path: str
    loaded_here_spent_elsewhere: int = 0
    loaded_elsewhere_spent_here: int = 0
    card_sold_here_used_elsewhere: int = 0  # count cards: the value their uses earned
    card_sold_elsewhere_used_here: int = 0

    @property
    def net(self) -> int:
        return (
            self.loaded_elsewhere_spent_here
            + self.card_sold_elsewhere_used_here
            - self.loaded_here_spent_elsewhere
            - self.card_sold_here_used_elsewhere
        )


def settle(
    org_path: str, spent: Iterable[tuple[str, str, int]], card_used: Iterable[tuple[str, str, int]]
) -> list[StorePosition]:
    """Each store's cross-store position under org_path: value loaded at one store and
    spent (net of refunds) at another is owed by the loading store to the spending one
    (spent: loaded at, spent at, amount); so is a count card's use (net of undone uses)
    at a store other than the one that sold it, for the share of the price the use
    earned (card_used: sold at, used at, value)."""
    positions: dict[str, StorePosition] = {}

    def position(store: str) -> StorePosition | None:
        if is_under(store, org_path):
            return positions.setdefault(store, StorePosition(store))
        return None

    for loaded, spent_at, amount in spent:
        if (p := position(loaded)) is not None:
            p.loaded_here_spent_elsewhere += amount
        if (p := position(spent_at)) is not None:
            p.loaded_elsewhere_spent_here += amount
    for sold, used_at, amount in card_used:
        if (p := position(sold)) is not None:
            p.card_sold_here_used_elsewhere += amount
        if (p := position(used_at)) is not None:
            p.card_sold_elsewhere_used_here += amount
    return sorted(positions.values(), key=lambda p: p.store_path)


def store_day(principal: dict[str, int], bonus: dict[str, int]) -> tuple[int, int, int]:
    """(principal loaded, bonus given, stored value spent) from a day's sums by entry kind."""

    def both(kind: EntryKind) -> int:
        return principal.get(kind.value, 0) + bonus.get(kind.value, 0)

    loaded = principal.get(EntryKind.TOP_UP.value, 0) + principal.get(EntryKind.TOP_UP_REFUND.value, 0)
    spent = -(both(EntryKind.CONSUMPTION) + both(EntryKind.CONSUMPTION_REFUND))
    return loaded, bonus.get(EntryKind.TOP_UP_BONUS.value, 0), spent


def count_card_day(value: dict[str, int]) -> tuple[int, int]:
    """(count cards sold net of the refunds made, value earned by the uses punched net of
    those undone) from a day's sums of value by card entry kind."""
    sold = value.get(CardEntry.SALE.value, 0) + value.get(CardEntry.REFUND.value, 0)
    return sold, -(value.get(CardEntry.USE.value, 0) + value.get(CardEntry.USE_UNDONE.value, 0))


@dataclass
class TopUpTakings:
    tender: Tender
    top_up: int = 0  # principal paid with it that day
    refunded: int = 0  # principal given back to it that day
    count_card: int = 0  # paid for count cards that day
    count_card_refunded: int = 0  # given back for count cards refunded that day


def takings(top_ups: Iterable[tuple[str, str, int]], count_cards: Iterable[tuple[str, str, int]]) -> list[TopUpTakings]:
    """What each tender took and gave back, in the enum's order: top_ups as (tender,
    "top_up" or "refunded", principal), count_cards as (tender, card entry kind, value)."""
    by_tender: dict[str, TopUpTakings] = {}
    for tender, field, fen in top_ups:
        setattr(by_tender.setdefault(tender, TopUpTakings(Tender(tender))), field, fen)
    for tender, kind, fen in count_cards:
        found = by_tender.setdefault(tender, TopUpTakings(Tender(tender)))
        if kind == CardEntry.SALE.value:
            found.count_card += fen
        else:
            found.count_card_refunded -= fen
    order = list(Tender)
    return sorted(by_tender.values(), key=lambda t: order.index(t.tender))
