"""Wallet tables (SQLAlchemy Core) and the reads and writes the use cases share.

- member_accounts: the posted and pending totals of a member's principal and bonus
  accounts, one row per member so that one row lock covers a spend. CHECK constraints
  repeat the ledger invariant: no account below zero, pending included.
- entries: the ledger, append-only. Each entry moves principal and/or bonus between
  the member's accounts and one system account (counter_account), so the sum over all
  accounts is zero by construction. A member's entries are numbered 1, 2, ... in the
  order they were posted (`sequence`, the next after member_accounts.last_sequence,
  under its row lock): the entries of one batch go out in one statement, whose writes
  PostgreSQL runs in an order of its own (database/merged_writes.py), so neither a
  database sequence nor the post time says which came first. System accounts keep no row of their own: their
  totals are sums over entries, so a busy store's till never becomes a lock that
  every checkout waits on.
- lots: what each top-up loaded and where, and how much of it is left.
- holds and hold_draws: pending spends, and the lots each capture drew from.
- top_ups, top_up_packages, batch_rows, idempotency_keys.
- count_card_plans, count_cards, count_card_entries: count cards (计次卡).
"""

from sqlalchemy import (
    JSON, BigInteger, CheckConstraint, Column, Index, Integer, String, Table, bindparam, insert, select, update,
)

from huiyuan.database import idempotency
from huiyuan.database.engines import UtcDateTime, new_metadata
from huiyuan.database.direct import execute_together, send
from huiyuan.database.upsert import insert_new, lock_or_make
from services.wallet.domain import accounts as domain

metadata = new_metadata()
Money = BigInteger

member_accounts = Table(
    "member_accounts", metadata,
    Column("member_id", String(40), primary_key=True),
    Column("principal_fen", Money, nullable=False),
    Column("bonus_fen", Money, nullable=False),
    Column("held_principal_fen", Money, nullable=False),
    Column("held_bonus_fen", Money, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    Column("last_sequence", BigInteger, nullable=False),  # of the member's last entry (domain.MemberAccounts)
    CheckConstraint("held_principal_fen >= 0 AND principal_fen - held_principal_fen >= 0", name="principal_covers_holds"),
    CheckConstraint("held_bonus_fen >= 0 AND bonus_fen - held_bonus_fen >= 0", name="bonus_covers_holds"),
)

entries = Table(
    "entries", metadata,
    Column("entry_id", String(80), primary_key=True),  # <operation id>:<nnnn>, chosen before writing
    Column("operation_id", String(40), nullable=False, index=True),
    Column("member_id", String(40), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("principal_delta_fen", Money, nullable=False),
    Column("bonus_delta_fen", Money, nullable=False),
    Column("balance_after_fen", Money, nullable=False),
    Column("counter_account", String(160), nullable=False),
    Column("loaded_store_path", String(140), nullable=False),
    Column("store_path", String(140), nullable=False),
    Column("operator_id", String(64), nullable=False),
    Column("policy", String(24), nullable=False),
    Column("memo", String(200), nullable=False),
    Column("post_time", UtcDateTime, nullable=False),
    Column("sequence", BigInteger, nullable=False),  # 1, 2, ... in the order the member's entries were posted
    Index("ix_entries_member_id_sequence", "member_id", "sequence", unique=True),
    Index("ix_entries_post_time", "post_time"),
)

lots = Table(
    "lots", metadata,
    Column("lot_id", String(40), primary_key=True),  # time-sortable: oldest = smallest
    Column("member_id", String(40), nullable=False),
    Column("loaded_store_path", String(140), nullable=False),
    Column("principal_left_fen", Money, nullable=False),
    Column("bonus_left_fen", Money, nullable=False),
    CheckConstraint("principal_left_fen >= 0 AND bonus_left_fen >= 0", name="not_negative"),
    Index("ix_lots_member_id_lot_id", "member_id", "lot_id"),
)

holds = Table(
    "holds", metadata,
    Column("hold_id", String(40), primary_key=True),
    Column("member_id", String(40), nullable=False),
    Column("amount_fen", Money, nullable=False),
    Column("principal_fen", Money, nullable=False),  # the split placed as pending
    Column("bonus_fen", Money, nullable=False),
    Column("captured_principal_fen", Money, nullable=False),
    Column("captured_bonus_fen", Money, nullable=False),
    Column("refunded_fen", Money, nullable=False),
    Column("state", String(16), nullable=False),
    Column("store_path", String(140), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("policy", String(24), nullable=False),
    Column("expire_time", UtcDateTime, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Index("ix_holds_state_expire_time", "state", "expire_time"),
    Index("ix_holds_member_id_state", "member_id", "state"),
)

hold_draws = Table(
    "hold_draws", metadata,
    Column("hold_id", String(40), primary_key=True),
    Column("lot_id", String(40), primary_key=True),
    Column("loaded_store_path", String(140), nullable=False),
    Column("principal_fen", Money, nullable=False),
    Column("bonus_fen", Money, nullable=False),
    Column("refunded_principal_fen", Money, nullable=False),
    Column("refunded_bonus_fen", Money, nullable=False),
)

top_ups = Table(
    "top_ups", metadata,
    Column("top_up_id", String(40), primary_key=True),
    Column("member_id", String(40), nullable=False, index=True),
    Column("principal_fen", Money, nullable=False),
    Column("bonus_fen", Money, nullable=False),
    Column("tender", String(16), nullable=False),
    Column("tender_reference", String(64), nullable=False),
    Column("store_path", String(140), nullable=False),
    Column("packages", JSON, nullable=False),  # [{"package_id", "name", "bonus_fen"}]
    Column("operator_id", String(64), nullable=False),
    Column("refund_time", UtcDateTime, nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
    Index("ix_top_ups_store_path_create_time", "store_path", "create_time"),  # a store's day
    Index("ix_top_ups_store_path_refund_time", "store_path", "refund_time"),
)

top_up_packages = Table(
    "top_up_packages", metadata,
    Column("package_id", String(40), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("org_path", String(140), nullable=False),
    Column("steps", JSON, nullable=False),  # [[threshold_fen, bonus_fen], ...]
    Column("start_time", UtcDateTime, nullable=True),
    Column("end_time", UtcDateTime, nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
    Column("ended_by", String(64), nullable=True),  # who ended it early (EndTopUpPackage)
    Column("tenders", JSON, nullable=True),  # ["CASH", ...]; NULL or []: domain.COUNTER_TENDERS
)

batch_rows = Table(
    "batch_rows", metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("row_number", Integer, primary_key=True),
    Column("member_id", String(40), nullable=False),
    Column("amount_fen", Money, nullable=False),
    Column("top_up_id", String(40), nullable=False),
)

# Count cards (计次卡, services/wallet/count_card_rules.py): the plans on sale, the
# cards sold (one row each, locked by every change to it), and each card's immutable
# history. An undo names the use it gives back, once (a unique column).
count_card_plans = Table(
    "count_card_plans", metadata,
    Column("plan_id", String(40), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("org_path", String(140), nullable=False),
    Column("uses", Integer, nullable=False),
    Column("price_fen", Money, nullable=False),
    Column("valid_days", Integer, nullable=False),
    Column("skus", JSON, nullable=False),
    Column("start_time", UtcDateTime, nullable=True),
    Column("end_time", UtcDateTime, nullable=True),
    Column("ended_by", String(64), nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
)

count_cards = Table(
    "count_cards", metadata,
    Column("card_id", String(40), primary_key=True),
    Column("member_id", String(40), nullable=False),
    Column("plan_id", String(40), nullable=False),
    Column("name", String(64), nullable=False),
    Column("org_path", String(140), nullable=False),
    Column("skus", JSON, nullable=False),
    Column("uses_total", Integer, nullable=False),
    Column("uses_left", Integer, nullable=False),
    Column("price_fen", Money, nullable=False),
    Column("sold_store_path", String(140), nullable=False),
    Column("tender", String(16), nullable=False),
    Column("tender_reference", String(64), nullable=False),
    Column("operator_id", String(64), nullable=False),
    Column("expire_time", UtcDateTime, nullable=True),
    Column("refund_time", UtcDateTime, nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
    CheckConstraint("uses_left >= 0 AND uses_left <= uses_total", name="uses_left_in_range"),
    Index("ix_count_cards_member_id_card_id", "member_id", "card_id"),
)

count_card_entries = Table(
    "count_card_entries", metadata,
    Column("entry_id", String(40), primary_key=True),
    Column("card_id", String(40), nullable=False),
    Column("member_id", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("uses_delta", Integer, nullable=False),
    Column("value_delta_fen", Money, nullable=False),
    Column("uses_left_after", Integer, nullable=False),
    Column("value_left_after_fen", Money, nullable=False),
    Column("store_path", String(140), nullable=False),
    Column("sold_store_path", String(140), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("operator_id", String(64), nullable=False),
    Column("memo", String(200), nullable=False),
    Column("undoes_entry_id", String(40), nullable=True, unique=True),
    Column("post_time", UtcDateTime, nullable=False),
    Index("ix_count_card_entries_card_id_entry_id", "card_id", "entry_id"),
    Index("ix_count_card_entries_store_path_post_time", "store_path", "post_time"),
)

idempotency_keys = idempotency.define_table(metadata)


# ---------------------------------------------------------------- member accounts

# The statements every spend runs, built once (SQLAlchemy reuses their compiled form).
_ACCOUNTS = select(member_accounts).where(member_accounts.c.member_id == bindparam("member_id"))
_LOCK_ACCOUNTS = _ACCOUNTS.with_for_update()
_LOCK_MANY_ACCOUNTS = select(member_accounts).where(
    member_accounts.c.member_id.in_(bindparam("member_ids", expanding=True))
).order_by(member_accounts.c.member_id).with_for_update()
# The accounts of a hold's member, locked: one statement where a lookup and a lock were two.
_LOCK_ACCOUNTS_OF_HOLD = select(member_accounts).where(member_accounts.c.member_id == select(holds.c.member_id).where(
    holds.c.hold_id == bindparam("hold_id")).scalar_subquery()).with_for_update()
# A batch of captures: its holds' members' accounts, locked in member_id order (as
# _LOCK_MANY_ACCOUNTS), then the holds, in hold_id order, then those members' lots.
_MEMBERS_OF_HOLDS = select(holds.c.member_id).where(holds.c.hold_id.in_(bindparam("hold_ids", expanding=True)))
_LOCK_ACCOUNTS_OF_HOLDS = select(member_accounts).where(member_accounts.c.member_id.in_(_MEMBERS_OF_HOLDS)
                                                        ).order_by(member_accounts.c.member_id).with_for_update()
_LOCK_HOLDS = select(holds).where(holds.c.hold_id.in_(bindparam("hold_ids", expanding=True))
                                  ).order_by(holds.c.hold_id).with_for_update()
_SAVE_ACCOUNTS = update(member_accounts).where(member_accounts.c.member_id == bindparam("key")).values(
    principal_fen=bindparam("principal"), bonus_fen=bindparam("bonus"), held_principal_fen=bindparam("held_principal"),
    held_bonus_fen=bindparam("held_bonus"), update_time=bindparam("now"), last_sequence=bindparam("last_sequence"))
_MOVE_LOT = update(lots).where(lots.c.lot_id == bindparam("key")).values(
    principal_left_fen=lots.c.principal_left_fen + bindparam("principal"),
    bonus_left_fen=lots.c.bonus_left_fen + bindparam("bonus"))


def _to_accounts(row) -> domain.MemberAccounts:
    return domain.MemberAccounts(row.member_id, row.principal_fen, row.bonus_fen, row.held_principal_fen,
                                 row.held_bonus_fen, row.last_sequence)


async def read_accounts(db, member_id: str) -> domain.MemberAccounts:
    row = (await db.execute(_ACCOUNTS, {"member_id": member_id})).one_or_none()
    return _to_accounts(row) if row else domain.MemberAccounts(member_id)


def _empty(member_id: str, now) -> dict:
    return {"member_id": member_id, "principal_fen": 0, "bonus_fen": 0, "held_principal_fen": 0, "held_bonus_fen": 0,
            "update_time": now, "last_sequence": 0}


async def lock_accounts(session, member_id: str, now) -> domain.MemberAccounts:
    """The member's accounts, locked until the transaction ends (made on first use)."""
    return _to_accounts(await lock_or_make(session, _LOCK_ACCOUNTS, {"member_id": member_id}, member_accounts,
                                           _empty(member_id, now)))


async def lock_accounts_of(session, member_ids, now) -> dict[str, domain.MemberAccounts]:
    """Many members' accounts, made where missing, then locked in one statement in
    member_id order: two batches that share members lock them in the same order, so
    neither waits for the other while holding what the other needs (a deadlock)."""
    ids = sorted(set(member_ids))
    await insert_new(session, member_accounts, [_empty(m, now) for m in ids], conflict="member_id")
    return await lock_existing_accounts(session, ids)


async def lock_accounts_of_hold(session, hold_id: str) -> domain.MemberAccounts | None:
    """The accounts of the hold's member, locked; None if there is no such hold."""
    row = (await session.execute(_LOCK_ACCOUNTS_OF_HOLD, {"hold_id": hold_id})).one_or_none()
    return None if row is None else _to_accounts(row)


async def lock_existing_accounts(session, member_ids) -> dict[str, domain.MemberAccounts]:
    """Many members' accounts, locked in one statement in member_id order; a member with
    none yet is empty and gets no row (a spend has nothing to take from it)."""
    rows = await session.execute(_LOCK_MANY_ACCOUNTS, {"member_ids": sorted(set(member_ids))})
    found = {row.member_id: _to_accounts(row) for row in rows}
    return {m: found.get(m) or domain.MemberAccounts(m) for m in member_ids}


async def lock_holds_to_capture(session, hold_ids) -> tuple[dict, list, dict[str, list[domain.Lot]]]:
    """The holds' members' accounts (by member), the holds' rows and the members' lots
    with value left (by member, oldest first): the accounts locked in member_id order,
    then the holds in hold_id order, as every spend locks; sent together, answered in
    one round trip."""
    ids = {"hold_ids": sorted(set(hold_ids))}
    accounts, held, open_lots = (rows.all() for rows in await execute_together(
        session, (_LOCK_ACCOUNTS_OF_HOLDS, ids), (_LOCK_HOLDS, ids), (_LOTS_OF_HOLDS, ids)))
    by_member: dict[str, list[domain.Lot]] = {row.member_id: [] for row in accounts}
    for r in open_lots:
        by_member[r.member_id].append(domain.Lot(r.lot_id, r.loaded_store_path, r.principal_left_fen, r.bonus_left_fen))
    return {row.member_id: _to_accounts(row) for row in accounts}, held, by_member


async def save_accounts(session, accounts: domain.MemberAccounts, now) -> None:
    await save_all_accounts(session, [accounts], now)


async def save_all_accounts(session, accounts: list[domain.MemberAccounts], now) -> None:
    """Each member's totals, checked against the ledger invariant first."""
    for a in accounts:
        a.check()
    await send(session, _SAVE_ACCOUNTS, [{
        "key": a.member_id, "principal": a.principal, "bonus": a.bonus, "held_principal": a.held_principal,
        "held_bonus": a.held_bonus, "now": now, "last_sequence": a.last_sequence} for a in accounts])


# ---------------------------------------------------------------- lots

_LOTS = select(lots).where(lots.c.member_id == bindparam("member_id"),
                           (lots.c.principal_left_fen > 0) | (lots.c.bonus_left_fen > 0)).order_by(lots.c.lot_id)
_LOTS_OF_HOLDS = select(lots).where(lots.c.member_id.in_(_MEMBERS_OF_HOLDS),
                                    (lots.c.principal_left_fen > 0) | (lots.c.bonus_left_fen > 0)
                                    ).order_by(lots.c.member_id, lots.c.lot_id)


async def open_lots(session, member_id: str) -> list[domain.Lot]:
    """The member's lots with value left, oldest first (the member row is locked)."""
    rows = await session.execute(_LOTS, {"member_id": member_id})
    return [domain.Lot(r.lot_id, r.loaded_store_path, r.principal_left_fen, r.bonus_left_fen) for r in rows]


async def add_lot(session, lot_id: str, member_id: str, store_path: str, principal: int, bonus: int) -> None:
    await send(session, insert(lots), {"lot_id": lot_id, "member_id": member_id, "loaded_store_path": store_path,
                                       "principal_left_fen": principal, "bonus_left_fen": bonus})


async def move_lots(session, draws: list[domain.Draw], sign: int) -> None:
    """Take (sign -1) or give back (sign +1) what the draws say, lot by lot."""
    await send(session, _MOVE_LOT, [{"key": d.lot_id, "principal": sign * d.principal, "bonus": sign * d.bonus}
                                    for d in draws])


# ---------------------------------------------------------------- entries


async def post(session, accounts: domain.MemberAccounts, operation_id: str, postings: list[domain.Posting], *,
               operator_id: str, policy: str, now, first: int = 0) -> None:
    """Append the entries and save the member's totals, each entry with the balance
    after it and its sequence (the member's accounts are locked). Entry ids are <operation_id>:<n>, so posting one operation twice fails
    on the primary key instead of moving money twice; n has four digits, so that ids
    sort in posting order (a spend posts an entry per lot it draws on: :0009 before
    :0010). Ids posted before n was padded sort as text within their operation."""
    await send(session, insert(entries), entry_rows(accounts, operation_id, postings, operator_id=operator_id,
                                                    policy=policy, now=now, first=first))
    await save_accounts(session, accounts, now)


def entry_rows(accounts: domain.MemberAccounts, operation_id: str, postings: list[domain.Posting], *,
               operator_id: str, policy: str, now, first: int = 0) -> list[dict]:
    """The entries' rows of post(), each posting applied to the accounts in turn."""
    rows = []
    for n, p in enumerate(postings, start=first):
        sequence = domain.apply(accounts, p)
        rows.append({
            "entry_id": f"{operation_id}:{n:04d}", "operation_id": operation_id, "member_id": accounts.member_id,
            "kind": p.kind.value, "principal_delta_fen": p.principal, "bonus_delta_fen": p.bonus,
            "balance_after_fen": accounts.principal + accounts.bonus, "counter_account": p.counter_account,
            "loaded_store_path": p.loaded_store_path, "store_path": p.store_path, "operator_id": operator_id,
            "policy": policy, "memo": p.memo[:domain.MAX_MEMO], "post_time": now, "sequence": sequence,
        })
    return rows
