"""Value coming in and going back out: top-ups with packages, enterprise batches,
top-up refunds, HQ adjustments; and the packages themselves."""

from dataclasses import dataclass, field, replace

from sqlalchemy import bindparam, insert, select, update

from huiyuan.database.engines import take_turn_on
from huiyuan.database.direct import send
from huiyuan.runtime.errors import FailedPrecondition, NotFound
from huiyuan.runtime.requests import check_in_scope, on_line
from huiyuan.runtime.validity import has_ended, shortened_end
from services.wallet.domain import accounts as domain
from services.wallet.storage import tables as storage
from services.wallet.domain.accounts import EntryKind, Posting
from services.wallet.storage.tables import batch_rows, top_up_packages, top_ups

NO_POLICY = "-"  # entries that spend nothing record no spend policy


@dataclass
class TopUp:
    top_up_id: str
    member_id: str
    principal: int
    bonus: int
    tender: domain.Tender
    tender_reference: str
    store_path: str
    packages: list[dict] = field(default_factory=list)  # [{"package_id", "name", "bonus_fen"}]
    operator_id: str = ""
    create_time: object = None
    refund_time: object = None  # None: not refunded


def _to_top_up(row) -> TopUp:
    return TopUp(row.top_up_id, row.member_id, row.principal_fen, row.bonus_fen, domain.Tender(row.tender),
                 row.tender_reference, row.store_path, row.packages, row.operator_id, row.create_time, row.refund_time)


async def top_up_by_id(db, top_up_id: str, lock: bool = False) -> TopUp:
    query = select(top_ups).where(top_ups.c.top_up_id == top_up_id)
    row = (await db.execute(query.with_for_update() if lock else query)).one_or_none()
    if row is None:
        raise NotFound("TOP_UP_NOT_FOUND", "No such top-up.", "充值记录不存在。", top_up_id=top_up_id)
    return _to_top_up(row)


def _to_package(row) -> domain.TopUpPackage:
    return domain.TopUpPackage(row.package_id, row.name, row.org_path, [domain.PackageStep(t, b) for t, b in row.steps],
                               row.start_time, row.end_time, row.ended_by or "",
                               tuple(domain.Tender(t) for t in row.tenders or ()))


async def _packages(db) -> list[domain.TopUpPackage]:
    rows = await db.execute(select(top_up_packages).order_by(top_up_packages.c.package_id))
    return [_to_package(row) for row in rows]


async def packages_at(db, store_path: str, at) -> list[domain.TopUpPackage]:
    """The packages a top-up at this store gets at this moment."""
    return [p for p in await _packages(db) if p.applies(store_path, at)]


async def packages_on_line(db, org_path: str, at, show_ended: bool) -> list[domain.TopUpPackage]:
    """A back office's view: the packages of the node's line (every one without org_path),
    scheduled ones included, ended ones only with show_ended."""
    return [p for p in await _packages(db)
            if (not org_path or on_line(p.org_path, org_path)) and (show_ended or not has_ended(p.end_time, at))]


async def package_by_id(db, package_id: str, lock: bool = False) -> domain.TopUpPackage:
    query = select(top_up_packages).where(top_up_packages.c.package_id == package_id)
    row = (await db.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise NotFound("PACKAGE_NOT_FOUND", "No such top-up package.", "充值套餐不存在。", package_id=package_id)
    return _to_package(row)


async def end_package(db, package_id: str, *, end_time, operator: str, actor_path: str, now) -> domain.TopUpPackage:
    """Shorten a package so that top-ups from end_time get no bonus from it
    (huiyuan/runtime/validity.py: its steps never change)."""
    package = await package_by_id(db, package_id, lock=True)
    check_in_scope(package.org_path, actor_path, "package", "套餐")
    end = shortened_end(package.start_time, package.end_time, end_time, now, kind="package", kind_zh="充值套餐")
    await db.execute(update(top_up_packages).where(top_up_packages.c.package_id == package_id)
                     .values(end_time=end, ended_by=operator))
    return replace(package, end_time=end, ended_by=operator)


async def create_package(session, package: domain.TopUpPackage, now) -> domain.TopUpPackage:
    await session.execute(insert(top_up_packages).values(
        package_id=package.package_id, name=package.name.strip(), org_path=package.org_path,
        steps=[[s.threshold_fen, s.bonus_fen] for s in package.steps], start_time=package.start_time,
        end_time=package.end_time, tenders=[t.value for t in package.tenders], create_time=now))
    return package


async def top_up(session, *, top_up_id: str, member_id: str, amount: int, tender: domain.Tender, tender_reference: str,
                 store_path: str, operator_id: str, now, packages: list | None = None,
                 accounts: domain.MemberAccounts | None = None) -> tuple[TopUp, domain.MemberAccounts]:
    """Load amount as principal, plus the bonus of the best package; usable at once.
    A batch passes what it has already read: the packages at this store now, and the
    member's accounts, locked."""
    if packages is None:
        packages = await packages_at(session, store_path, now)
    offer = domain.best_package(packages, store_path, amount, now, tender)
    bonus = offer[1] if offer else 0
    applied = [{"package_id": offer[0].package_id, "name": offer[0].name, "bonus_fen": bonus}] if offer else []
    if accounts is None:
        accounts = await storage.lock_accounts(session, member_id, now)
    await storage.add_lot(session, top_up_id, member_id, store_path, amount, bonus)
    postings = [Posting(EntryKind.TOP_UP, amount, 0, domain.tender_account(store_path), store_path, store_path,
                        f"{tender.value} {tender_reference}".strip())]
    if bonus:
        postings.append(Posting(EntryKind.TOP_UP_BONUS, 0, bonus, domain.bonus_expense_account(store_path), store_path,
                                store_path, applied[0]["name"]))
    await storage.post(session, accounts, top_up_id, postings, operator_id=operator_id, policy=NO_POLICY, now=now)
    await send(session, insert(top_ups), dict(
        top_up_id=top_up_id, member_id=member_id, principal_fen=amount, bonus_fen=bonus, tender=tender.value,
        tender_reference=tender_reference, store_path=store_path, packages=applied, operator_id=operator_id,
        refund_time=None, create_time=now))
    return TopUp(top_up_id, member_id, amount, bonus, tender, tender_reference, store_path, applied, operator_id,
                 now), accounts


async def refund_top_up(session, *, top_up_id: str, refund_id: str, reason: str, operator_id: str,
                        now) -> tuple[TopUp, domain.MemberAccounts]:
    """Return the principal to the original tender and take the bonus back. Refused
    when what is left cannot cover both: that value was spent."""
    found = await top_up_by_id(session, top_up_id)
    accounts = await storage.lock_accounts(session, found.member_id, now)
    row = await top_up_by_id(session, top_up_id, lock=True)  # after the accounts' lock, as every writer takes them
    if row.refund_time is not None:
        raise FailedPrecondition("TOP_UP_ALREADY_REFUNDED", "This top-up was already refunded.", "该笔充值已退款。",
                                 top_up_id=top_up_id)
    if accounts.available_principal < row.principal or accounts.available_bonus < row.bonus:
        raise FailedPrecondition(
            "INSUFFICIENT_BALANCE",
            f"The balance left cannot cover the refund: {row.principal} fen principal and {row.bonus} fen bonus "
            f"needed, {accounts.available_principal} and {accounts.available_bonus} available.",
            f"剩余余额不足以退款：需本金 {row.principal} 分、赠送 {row.bonus} 分，"
            f"可用本金 {accounts.available_principal} 分、赠送 {accounts.available_bonus} 分。",
            top_up_id=top_up_id)
    lots = await storage.open_lots(session, row.member_id)
    lots.sort(key=lambda lot: lot.lot_id != top_up_id)  # its own lot first, then the oldest
    draws = domain.draw_from_lots(lots, row.principal, row.bonus)
    await storage.move_lots(session, draws, -1)
    postings = []
    for d in draws:
        if d.principal:
            postings.append(Posting(EntryKind.TOP_UP_REFUND, -d.principal, 0, domain.tender_account(row.store_path),
                                    d.loaded_store_path, row.store_path, reason))
        if d.bonus:
            postings.append(Posting(EntryKind.TOP_UP_REFUND, 0, -d.bonus, domain.bonus_expense_account(row.store_path),
                                    d.loaded_store_path, row.store_path, reason))
    await storage.post(session, accounts, refund_id, postings, operator_id=operator_id, policy=NO_POLICY, now=now)
    await send(session, update(top_ups).where(top_ups.c.top_up_id == top_up_id).values(refund_time=now))
    return replace(row, refund_time=now), accounts


async def adjust(session, *, adjustment_id: str, member_id: str, principal_delta: int, bonus_delta: int, reason: str,
                 operator_id: str, now) -> domain.MemberAccounts:
    """HQ's correction: a new entry against the adjustment account, never an edit.
    Value added is a lot loaded at HQ; value taken comes from the oldest lots."""
    accounts = await storage.lock_accounts(session, member_id, now)
    take_p, take_b = max(0, -principal_delta), max(0, -bonus_delta)
    if accounts.available_principal < take_p or accounts.available_bonus < take_b:
        raise domain.insufficient(accounts, take_p + take_b)
    postings = []
    if take_p or take_b:
        draws = domain.draw_from_lots(await storage.open_lots(session, member_id), take_p, take_b)
        await storage.move_lots(session, draws, -1)
        postings += [Posting(EntryKind.ADJUSTMENT, -d.principal, -d.bonus, domain.ADJUSTMENT_ACCOUNT,
                             d.loaded_store_path, "hq", reason) for d in draws]
    add_p, add_b = max(0, principal_delta), max(0, bonus_delta)
    if add_p or add_b:
        await storage.add_lot(session, adjustment_id, member_id, "hq", add_p, add_b)
        postings.append(Posting(EntryKind.ADJUSTMENT, add_p, add_b, domain.ADJUSTMENT_ACCOUNT, "hq", "hq", reason))
    await storage.post(session, accounts, adjustment_id, postings, operator_id=operator_id, policy=NO_POLICY, now=now)
    return accounts


@dataclass
class BatchRow:
    row_number: int
    member_id: str
    amount: int
    reject_reason: str = ""
    bonus: int = 0  # given with it, once applied


async def batch_top_up(session, *, batch_id: str, rows: list[BatchRow], store_path: str, operator_id: str,
                       new_id, now) -> list[BatchRow]:
    """Apply each valid row not applied before under this batch_id; a re-run of the
    batch reports those rows ALREADY_APPLIED and moves nothing. One transaction: the
    caller gives it a part of the file (ROWS_AT_ONCE), so that a company's 10,000 staff
    are not all locked, for their cashiers too, until the whole file is loaded."""
    numbers = [row.row_number for row in rows if not row.reject_reason]
    if not numbers:
        return rows
    await take_turn_on(session, f"wallet.batch:{batch_id}")  # a twin run reads what this one applied
    done = set((await session.execute(_APPLIED_ROWS, {"batch_id": batch_id, "row_numbers": numbers})).scalars())
    to_apply = [row for row in rows if not row.reject_reason and row.row_number not in done]
    for row in rows:
        if row.row_number in done:
            row.reject_reason = "ALREADY_APPLIED"
    if not to_apply:
        return rows
    packages = await packages_at(session, store_path, now)
    accounts = await storage.lock_accounts_of(session, [row.member_id for row in to_apply], now)
    applied = []
    for row in to_apply:
        top_up_id = new_id("t")
        loaded, _ = await top_up(session, top_up_id=top_up_id, member_id=row.member_id, amount=row.amount,
                                 tender=domain.Tender.ENTERPRISE, tender_reference=batch_id, store_path=store_path,
                                 operator_id=operator_id, now=now, packages=packages, accounts=accounts[row.member_id])
        row.bonus = loaded.bonus
        applied.append({"batch_id": batch_id, "row_number": row.row_number, "member_id": row.member_id,
                        "amount_fen": row.amount, "top_up_id": top_up_id})
    await send(session, insert(batch_rows), applied)
    return rows


ROWS_AT_ONCE = 500  # rows of a batch per transaction (bench/batch_top_up.py: 20 parts of 10,000 rows in 7.2 s)
_APPLIED_ROWS = select(batch_rows.c.row_number).where(
    batch_rows.c.batch_id == bindparam("batch_id"), batch_rows.c.row_number.in_(bindparam("row_numbers", expanding=True)))
