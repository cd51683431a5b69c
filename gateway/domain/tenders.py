"""How a refund's money goes back to the tenders that paid the order.

A tender is named by its kind and reference (tenders of one kind and reference are one
to the customer; stored value has no reference). Each tender gives back its share of
all the money the order's refunds have returned so far (runtime/money.py:
cumulative_split), less what it gave back already: cash comes back as cash, stored value
as stored value, and the last refund takes exactly what each tender has left."""

from huiyuan.runtime.money import cumulative_split, split_proportionally

TenderKey = tuple[int, str]  # (kind, reference)


def split_back(
    paid: list[tuple[TenderKey, int]], returned: dict[TenderKey, int], money: int
) -> list[tuple[TenderKey, int]]:
    """(tender, fen it gives back now) for each tender that paid (paid: (tender, fen) in
    the order's order, a tender named twice counted once), after earlier refunds gave
    back what `returned` says. (Refunds made before this rule gave stored value back
    first: a tender that gave back more than its share then gives nothing now, and the
    others make up the money in proportion.)"""
    keys: list[TenderKey] = []
    weights: dict[TenderKey, int] = {}
    for key, fen in paid:
        keys += [] if key in weights else [key]
        weights[key] = weights.get(key, 0) + fen
    before = [returned.get(key, 0) for key in keys]
    share_now = cumulative_split(sum(before) + money, [weights[key] for key in keys])
    back = [max(0, now - earlier) for now, earlier in zip(share_now, before)]
    for i, fen in enumerate(split_proportionally(sum(back) - money, back)):  # only after the earlier rule
        back[i] -= fen
    return list(zip(keys, back))
