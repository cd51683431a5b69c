"""The ledger's entries: appended with the member's totals, and read as a statement."""

from datetime import timedelta

from sqlalchemy import insert, select

from huiyuan.database import Transaction, send, under
from huiyuan.runtime.business_time import day_start
from services.wallet.domain.accounts import MemberAccounts
from services.wallet.domain.postings import MAX_MEMO, Entry, Posting, StatementQuery, apply
from services.wallet.domain.reports import entry_contributions
from services.wallet.storage.accounts import save_accounts
from services.wallet.storage.rollups import ROLLUPS
from services.wallet.storage.tables import entries

_INSERT_ENTRIES = insert(entries)


async def post(
    tx: Transaction,
    accounts: MemberAccounts,
    operation_id: str,
    postings: list[Posting],
    *,
    operator_id: str,
    policy: str,
    now,
    first: int = 0,
) -> None:
    """Append the entries and save the member's totals, each entry with the balance
    after it and its sequence (the member's accounts are locked). Entry ids are
    <operation_id>:<n>, so posting one operation twice fails on the primary key instead
    of moving money twice; n has four digits, so that ids sort in posting order (a spend
    posts an entry per lot it draws on: :0009 before :0010). Ids posted before n was
    padded sort as text within their operation."""
    await add_entries(
        tx, entry_rows(accounts, operation_id, postings, operator_id=operator_id, policy=policy, now=now, first=first)
    )
    await save_accounts(tx, accounts, now)


def entry_rows(
    accounts: MemberAccounts,
    operation_id: str,
    postings: list[Posting],
    *,
    operator_id: str,
    policy: str,
    now,
    first: int = 0,
) -> list[dict]:
    """The entries' rows of post(), each posting applied to the accounts in turn."""
    rows = []
    for n, p in enumerate(postings, start=first):
        sequence = apply(accounts, p)
        rows.append(
            {
                "entry_id": f"{operation_id}:{n:04d}",
                "operation_id": operation_id,
                "member_id": accounts.member_id,
                "kind": p.kind.value,
                "principal_delta_fen": p.principal,
                "bonus_delta_fen": p.bonus,
                "balance_after_fen": accounts.principal + accounts.bonus,
                "counter_account": p.counter_account,
                "loaded_store_path": p.loaded_store_path,
                "store_path": p.store_path,
                "operator_id": operator_id,
                "policy": policy,
                "memo": p.memo[:MAX_MEMO],
                "post_time": now,
                "sequence": sequence,
                "home_store_path": accounts.home_store_path,
            }
        )
    return rows


async def add_entries(tx: Transaction, rows: list[dict]) -> None:
    """Entries made by entry_rows(), for several members at once (their totals saved
    apart), and what they add to the reports' rollups: every entry is written here."""
    await send(tx, _INSERT_ENTRIES, rows)
    await ROLLUPS.record(
        tx,
        [
            c
            for r in rows
            for c in entry_contributions(
                r["kind"],
                r["principal_delta_fen"],
                r["bonus_delta_fen"],
                r["loaded_store_path"],
                r["post_time"],
                r["home_store_path"],
            )
        ],
    )


def _where(query: StatementQuery) -> list:
    c = entries.c
    conditions = [c.member_id == query.member_id]
    if query.start_date:
        conditions.append(c.post_time >= day_start(query.start_date))
    if query.end_date:
        conditions.append(c.post_time < day_start(query.end_date + timedelta(days=1)))
    if query.store_path:
        conditions.append(under(c.store_path, query.store_path))
    if query.kind:
        conditions.append(c.kind == query.kind.value)
    return conditions


def _to_entry(row) -> Entry:
    return Entry(
        row.entry_id,
        row.kind,
        row.principal_delta_fen,
        row.bonus_delta_fen,
        row.balance_after_fen,
        row.loaded_store_path,
        row.store_path,
        row.operator_id,
        row.post_time,
        row.memo,
        row.sequence,
    )


async def statement(tx: Transaction, query: StatementQuery, before: int | None, limit: int) -> list[Entry]:
    """The member's entries newest first, those posted before the entry with sequence
    `before` (the last one of the page before). By sequence, not by time: two calls on
    one member take a time stamp each before they queue for its lock, so the later stamp
    can be posted first; and the entries of a batch share one."""
    c = entries.c
    q = select(entries).where(*_where(query))
    if before is not None:
        q = q.where(c.sequence < before)
    return [_to_entry(r) for r in (await tx.execute(q.order_by(c.sequence.desc()).limit(limit))).all()]
