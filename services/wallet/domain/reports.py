"""The figures of reports: cross-store settlement and a store's day. Count cards
(计次卡) are prepaid value too: a card sold at one store and used at another settles as
stored value does, and their sales are in the till's takings."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from huiyuan.runtime.business_time import local
from huiyuan.runtime.requests import is_under
from huiyuan.runtime.rollups import Contribution
from services.wallet.domain.count_cards import EntryKind as CardEntry
from services.wallet.domain.homes import HomeMove, counted_at
from services.wallet.domain.postings import EntryKind
from services.wallet.domain.top_ups import Tender, TopUp

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


# ---------------------------------------------------------------- rollups
# What each of the wallet's facts adds to the reports' rollups (docs/reports.md,
# huiyuan/runtime/rollups.py). The live path records them with the fact; the rebuild
# (storage/rollups.py) recomputes them from the raw rows with these same functions.

STORED_VALUE = "stored_value"  # running, to stores: posted balances by the store that loaded them
STORED_VALUE_BY_HOME = "stored_value_by_home"  # running, to stores: posted balances by the members' home
HOME_MOVE = "HOME_MOVE"  # stored_value_by_home's key of a balance moved with its member's home
COUNT_CARDS = "count_cards"  # running, to stores: count card value by the store that sold it
TOP_UPS = "top_ups"  # to tills: top-ups and their refunds by the cashier who took them

STORED_VALUE_MEASURES = ("principal_fen", "bonus_fen")
COUNT_CARD_MEASURES = ("sold_fen", "used_fen", "refunded_fen", "unearned_fen")
TOP_UP_MEASURES = ("top_ups", "principal_fen", "bonus_fen", "refunds", "refunded_fen")


def business_day(moment: datetime) -> date:
    return local(moment).date()


def entry_contributions(
    kind: str, principal: int, bonus: int, loaded_store_path: str, post_time: datetime, home: str
) -> list[Contribution]:
    """A ledger entry: the member's posted principal and bonus move by its deltas, at
    the store that loaded the lot it touched (a spend across lots posts an entry per lot),
    and at the member's home as the wallet knew it (domain/homes.py), keyed by the
    entry's kind."""
    if not principal and not bonus:
        return []
    day, moved = business_day(post_time), {"principal_fen": principal, "bonus_fen": bonus}
    return [
        Contribution(STORED_VALUE, loaded_store_path, day, kind, moved),
        Contribution(STORED_VALUE_BY_HOME, counted_at(home, loaded_store_path), day, kind, moved),
    ]


def home_move_contributions(move: HomeMove) -> list[Contribution]:
    """A member's posted balance out of the old home and into the new one, on the day
    the wallet applied the change."""
    if not move.moves_money:
        return []
    day, either = business_day(move.move_time), move.to_path or move.from_path
    return [
        Contribution(
            STORED_VALUE_BY_HOME,
            counted_at(path, either),
            day,
            HOME_MOVE,
            {"principal_fen": sign * move.principal, "bonus_fen": sign * move.bonus},
        )
        for path, sign in ((move.from_path, -1), (move.to_path, +1))
    ]


def top_up_contributions(top_up: TopUp) -> list[Contribution]:
    """A top-up, on its day, at the till (or store) that took it, by its cashier."""
    assert top_up.create_time is not None
    return [
        Contribution(
            TOP_UPS,
            top_up.taken_at,
            business_day(top_up.create_time),
            top_up.cashier_id,
            {"top_ups": 1, "principal_fen": top_up.principal, "bonus_fen": top_up.bonus},
        )
    ]


def top_up_refund_contributions(top_up: TopUp, refund_time: datetime) -> list[Contribution]:
    """A top-up's refund, on its own day, where the top-up was taken and by its cashier:
    refunded_fen is the principal given back to the tender."""
    return [
        Contribution(
            TOP_UPS,
            top_up.taken_at,
            business_day(refund_time),
            top_up.cashier_id,
            {"refunds": 1, "refunded_fen": top_up.principal},
        )
    ]


def card_entry_contributions(
    kind: str, value_delta: int, sold_store_path: str, plan_id: str, post_time: datetime
) -> list[Contribution]:
    """A count card's entry, at the store that sold the card, by its plan: a sale adds
    its price to sold and unearned; a use earns its value (an undone use gives it back);
    a refund returns what was left. unearned_fen is the value still owed on the cards."""
    if kind == CardEntry.SALE.value:
        measures = {"sold_fen": value_delta}
    elif kind in CARD_USES:
        measures = {"used_fen": -value_delta}
    else:
        measures = {"refunded_fen": -value_delta}
    if not value_delta:
        return []
    return [
        Contribution(
            COUNT_CARDS,
            sold_store_path,
            business_day(post_time),
            plan_id,
            {**measures, "unearned_fen": value_delta},
        )
    ]
