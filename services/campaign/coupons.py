"""Coupons and the budgets behind discounts.

A coupon is issued from a template to a member and is AVAILABLE, then RESERVED for an
order, then REDEEMED (or back to AVAILABLE when the reservation is released or lapses).
A reservation also holds the order's campaign discounts against each campaign's budget
and limits. Every checkout of a campaign updates the same stats row, so that row is
locked as late as possible: the last statements of the transaction take it (in id
order, so two reservations never deadlock), add the amount, and only then check the
budget, the per-member limit and the per-store daily limit. Under that lock every
earlier reservation has committed and is seen (READ COMMITTED takes a new snapshot
per statement), so concurrent checkouts can never overspend; a check that fails rolls
the whole reservation back. Locked early, the row was held for the whole transaction
and serialised every checkout of the chain (bench/campaign.py). Where nothing is
checked under it (a campaign with no budget or limit, a redemption, a release, a
return), the addition is sent without waiting (runtime/direct.send): it goes out with
COMMIT, so the row is locked only while PostgreSQL runs the two, never while the
service gets round to committing. Every campaign has its row from its creation on.
Stats change in the redemption's own transaction. Reservations and redemptions that
arrive together run as one batch (database/batching.py), which adds to each row once; a
reservation whose campaign checks a budget or a limit runs in a transaction of its own.
"""

import functools
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, bindparam, func, insert, or_, select, update

from huiyuan.runtime.clock import local
from huiyuan.database.direct import Direct, execute_together, send
from huiyuan.runtime.errors import DomainError, FailedPrecondition, NotFound
from huiyuan.runtime.holds import HoldState
from huiyuan.database.idempotency import RUN_ALONE
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.money import yuan
from huiyuan.runtime.requests import is_under, on_line
from huiyuan.database.upsert import insert_new
from services.campaign import pricing
from services.campaign.storage import campaign_stats, campaign_uses, campaigns, coupon_templates, coupons, reservations

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L: read aloud at a till
AVAILABLE, RESERVED, REDEEMED, EXPIRED = "AVAILABLE", "RESERVED", "REDEEMED", "EXPIRED"

# The statements every checkout runs, built once (SQLAlchemy reuses their compiled form).
_PRESENTED = select(coupons.c.coupon_code, coupons.c.template_id, coupons.c.member_id, coupons.c.state,
                    coupons.c.valid_from_time, coupons.c.valid_until_time).where(
    coupons.c.coupon_code.in_(bindparam("codes", expanding=True)))
_TEMPLATE_BODIES = select(coupon_templates.c.template_id, coupon_templates.c.body).where(
    coupon_templates.c.template_id.in_(bindparam("template_ids", expanding=True)))
_LOCK_COUPONS = select(coupons).where(coupons.c.coupon_code.in_(bindparam("codes", expanding=True))
                                      ).order_by(coupons.c.coupon_code).with_for_update()
_RESERVE_COUPONS = update(coupons).where(coupons.c.coupon_code.in_(bindparam("codes", expanding=True))).values(
    state=RESERVED, reservation_id=bindparam("reservation"))
# The campaign behind each adjusted coupon's template ("" when no budget backs it), and
# the bodies of the campaigns that pay a reservation's adjustments: their own, or
# those behind their coupons.
_BEHIND = select(coupons.c.coupon_code, coupon_templates.c.campaign_id).join(
    coupon_templates, coupon_templates.c.template_id == coupons.c.template_id).where(
    coupons.c.coupon_code.in_(bindparam("adjusted_codes", expanding=True)))
_PAYING = select(campaigns.c.campaign_id, campaigns.c.body).where(or_(
    campaigns.c.campaign_id.in_(bindparam("campaign_ids", expanding=True)),
    campaigns.c.campaign_id.in_(select(coupon_templates.c.campaign_id).join(
        coupons, coupons.c.template_id == coupon_templates.c.template_id).where(
        coupons.c.coupon_code.in_(bindparam("adjusted_codes", expanding=True))).scalar_subquery())))
# A use counts against the limits while it is held or booked, until its whole discount
# has come back with returned goods (then, as in the stats, it is no order).
_COUNTED = and_(campaign_uses.c.campaign_id == bindparam("campaign_id"),
                campaign_uses.c.state.in_([HoldState.PENDING.value, HoldState.CAPTURED.value]),
                campaign_uses.c.returned_fen < campaign_uses.c.amount_fen)
_MEMBER_USES = select(func.count()).where(_COUNTED, campaign_uses.c.member_id == bindparam("member_id"))
_STORE_USES = select(func.count()).where(_COUNTED, campaign_uses.c.store_path == bindparam("store_path"),
                                         campaign_uses.c.business_day == bindparam("day"))
_INSERT_RESERVATION = insert(reservations)
_INSERT_USES = insert(campaign_uses)
# Reservations (one, or a batch's) locked in id order, and their uses and codes.
_LOCK_RESERVATIONS = select(reservations).where(reservations.c.reservation_id.in_(bindparam("keys", expanding=True))
                                                ).order_by(reservations.c.reservation_id).with_for_update()
_USES_OF_MANY = select(campaign_uses).where(campaign_uses.c.reservation_id.in_(bindparam("keys", expanding=True))
                                            ).order_by(campaign_uses.c.reservation_id, campaign_uses.c.campaign_id)
_CODES_OF_MANY = select(coupons.c.reservation_id, coupons.c.coupon_code, coupon_templates.c.campaign_id).join(
    coupon_templates, coupon_templates.c.template_id == coupons.c.template_id).where(
    coupons.c.reservation_id.in_(bindparam("keys", expanding=True)))
_SET_USES = update(campaign_uses).where(campaign_uses.c.reservation_id == bindparam("key")).values(
    state=bindparam("new_state"))
_SET_RESERVATION = update(reservations).where(reservations.c.reservation_id == bindparam("key")).values(
    state=bindparam("new_state"))
_REDEEM_COUPONS = update(coupons).where(coupons.c.reservation_id == bindparam("key")).values(state=REDEEMED)
_RETURN_COUPONS = update(coupons).where(coupons.c.reservation_id == bindparam("key")).values(
    state=AVAILABLE, reservation_id=None)


@dataclass
class Template:
    template_id: str
    name: str
    kind: pricing.CouponKind
    amount_fen: int = 0
    rate_bp: int = 0
    cap_fen: int = 0
    threshold_fen: int = 0
    categories: list[str] = field(default_factory=list)
    org_path: str = "hq"
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: int = 0
    campaign_id: str = ""

    def validity(self, issued: datetime) -> tuple[datetime, datetime]:
        if self.valid_days:
            return issued, issued + timedelta(days=self.valid_days)
        return self.valid_from or issued, self.valid_until


def _body(t: Template) -> dict:
    return {**t.__dict__, "kind": t.kind.value, "valid_from": t.valid_from.isoformat() if t.valid_from else None,
            "valid_until": t.valid_until.isoformat() if t.valid_until else None}


def _template(body: dict) -> Template:
    body = dict(body)
    for key in ("valid_from", "valid_until"):
        body[key] = datetime.fromisoformat(body[key]) if body[key] else None
    return Template(**{**body, "kind": pricing.CouponKind(body["kind"])})


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))


def not_found(code: str) -> NotFound:
    return NotFound("COUPON_NOT_FOUND", "No such coupon.", "优惠券不存在。", coupon_code=code)


async def create_template(db, t: Template, now) -> Template:
    if t.campaign_id and (await db.execute(select(campaigns.c.campaign_id)
                                           .where(campaigns.c.campaign_id == t.campaign_id))).first() is None:
        raise NotFound("CAMPAIGN_NOT_FOUND", "No such campaign.", "活动不存在。", campaign_id=t.campaign_id)
    await db.execute(insert(coupon_templates), {"template_id": t.template_id, "campaign_id": t.campaign_id,
                                                "body": _body(t), "create_time": now})
    return t


@functools.cache
def _stats_update(names: tuple[str, ...], returning: bool):
    """UPDATE campaign_stats adding to these counters, built once per set of names."""
    c = campaign_stats.c
    statement = (update(campaign_stats).where(c.campaign_id == bindparam("key"))
                 .values(**{name: c[name] + bindparam(f"add_{name}") for name in names}))
    return statement.returning(campaign_stats) if returning else statement


def _stats_params(campaign_id: str, deltas: dict[str, int]) -> dict:
    return {"key": campaign_id, **{f"add_{name}": delta for name, delta in deltas.items()}}


async def _add_to_stats(db, campaign_id: str, **deltas: int):
    """Add to a campaign's stats row, locking it until commit; the row after the change,
    for the checks that run under its lock."""
    return (await db.execute(_stats_update(tuple(sorted(deltas)), True), _stats_params(campaign_id, deltas))).one()


async def _book_all(db, additions: list[tuple[str, dict[str, int]]]) -> None:
    """_book_stats for many additions: each campaign's row added to once, in id order."""
    by_campaign: dict[str, dict[str, int]] = {}
    for campaign_id, deltas in additions:
        total = by_campaign.setdefault(campaign_id, {})
        for name, delta in deltas.items():
            total[name] = total.get(name, 0) + delta
    for campaign_id in sorted(by_campaign):
        await _book_stats(db, campaign_id, **by_campaign[campaign_id])


async def _book_stats(db, campaign_id: str, **deltas: int) -> None:
    """Add to a campaign's stats row where nothing is checked under its lock: sent, to
    go out with COMMIT (see the module's note)."""
    await send(db, _stats_update(tuple(sorted(deltas)), False), _stats_params(campaign_id, deltas))


async def template_body(db, template_id: str) -> dict:
    body = (await db.execute(select(coupon_templates.c.body).where(coupon_templates.c.template_id == template_id))
            ).scalar()
    if body is None:
        raise NotFound("TEMPLATE_NOT_FOUND", "No such coupon template.", "优惠券模板不存在。", template_id=template_id)
    return body


async def template_by_id(db, template_id: str) -> Template:
    return _template(await template_body(db, template_id))


async def issue(db, *, template_id: str, member_ids: list[str], now, batch_id: str = "") -> tuple[list[dict], list[str]]:
    """Coupons of the template for these members: (the coupons issued, the members
    skipped). With a batch_id, a member who already holds a coupon of that batch is
    skipped; the unique (batch_id, member_id) index settles it, even between two calls
    of one batch that run at once."""
    terms_body = await template_body(db, template_id)
    t = _template(terms_body)
    valid_from, valid_until = t.validity(now)
    wanted = [{"coupon_id": new_id("cp"), "coupon_code": new_code(), "template_id": template_id, "member_id": m,
               "state": AVAILABLE, "reservation_id": None, "valid_from_time": valid_from,
               "valid_until_time": valid_until, "issue_time": now, "batch_id": batch_id or None} for m in member_ids]
    if batch_id:
        inserted = set(await insert_new(db, coupons, wanted, conflict=("batch_id", "member_id")))
        issued = [c for c in wanted if c["coupon_id"] in inserted]
    else:
        await db.execute(insert(coupons), wanted)
        issued = wanted
    if t.campaign_id and issued:  # last, as a reservation does: the stats row is the hot one
        campaign = (await db.execute(select(campaigns.c.body).where(campaigns.c.campaign_id == t.campaign_id))).scalar()
        stats = await _add_to_stats(db, t.campaign_id, coupons_issued=len(issued))
        if spent(stats, campaign["budget_fen"]):
            raise budget_exhausted(t.campaign_id)
    given = {c["member_id"] for c in issued}
    skipped = list(dict.fromkeys(m for m in member_ids if m not in given))
    return [{**c, "body": terms_body} for c in issued], skipped  # with the template, as listings have it


def terms(body: dict) -> str:
    """What a coupon takes off and when, as a till prints it: 满¥50.00减¥5.00,
    打9折 最多减¥20.00, 减¥5.00 限tea."""
    t = _template(body)
    if t.kind == pricing.CouponKind.FIXED:
        off = f"减{yuan(t.amount_fen)}"
    else:  # rate_bp is the share paid: 9000 is 打9折, 8850 is 打8.85折
        off = f"打{Decimal(t.rate_bp) / 1000:f}折" + (f" 最多减{yuan(t.cap_fen)}" if t.cap_fen else "")
    when = f"满{yuan(t.threshold_fen)}" if t.threshold_fen else ""
    where = f" 限{'、'.join(t.categories)}" if t.categories else ""
    return when + off + where


def usable_at(row, store_path: str) -> bool:
    """A listed coupon (row with its template's body) can be used at this store: its
    template's scope covers it. State and validity the listing query has checked."""
    return is_under(store_path, row.body["org_path"])


def usable_under(row, org_path: str) -> bool:
    """A listed coupon can be used at some store under this node: its template's scope
    covers the node, or lies within it."""
    scope = row.body["org_path"]
    return on_line(scope, org_path)


async def of_member(db, member_id: str, state: str | None, before: str | None, limit: int,
                    valid_at: datetime | None = None) -> list:
    """A member's coupons, newest first, each with its template's body; with valid_at,
    only those valid then."""
    q = select(coupons, coupon_templates.c.body).join(
        coupon_templates, coupon_templates.c.template_id == coupons.c.template_id).where(coupons.c.member_id == member_id)
    if state:
        q = q.where(coupons.c.state == state)
    if valid_at is not None:
        q = q.where(coupons.c.valid_from_time <= valid_at, coupons.c.valid_until_time > valid_at)
    if before is not None:
        q = q.where(coupons.c.coupon_id < before)
    return (await db.execute(q.order_by(coupons.c.coupon_id.desc()).limit(limit))).all()


# What a cashier reads for each reason refusal() gives, in the sentence "优惠券 X …".
REFUSALS_ZH = {"COUPON_NOT_OWNED": "不属于该会员", "COUPON_ALREADY_USED": "已使用过", "COUPON_RESERVED": "正被另一笔订单占用",
               "COUPON_EXPIRED": "已过期", "COUPON_NOT_YET_VALID": "尚未生效"}


def refusal(row, member_id: str, at: datetime) -> str:
    """Why a coupon cannot be used by this member now ("" when it can)."""
    if row is None:
        return "COUPON_NOT_FOUND"
    if row.member_id != member_id:
        return "COUPON_NOT_OWNED"
    if row.state == REDEEMED:
        return "COUPON_ALREADY_USED"
    if row.state == RESERVED:
        return "COUPON_RESERVED"
    if row.state == EXPIRED or at >= row.valid_until_time:
        return "COUPON_EXPIRED"
    if at < row.valid_from_time:
        return "COUPON_NOT_YET_VALID"
    return ""


# Templates parsed, by id, for quotes. A template's terms never change once it is made
# (nothing updates coupon_templates), so a quote need not read and parse them again:
# they were a tenth of a quote's CPU (bench/campaign.py).
_quoted_templates: dict[str, Template] = {}
_QUOTED_TEMPLATES_MAX = 10_000


async def _templates(direct: Direct, template_ids: set[str]) -> dict[str, Template]:
    missing = sorted(template_ids - _quoted_templates.keys())
    if len(_quoted_templates) + len(missing) > _QUOTED_TEMPLATES_MAX:  # kept small: start again
        _quoted_templates.clear()
        missing = sorted(template_ids)
    if missing:
        for row in await direct.rows(_TEMPLATE_BODIES, {"template_ids": missing}):
            _quoted_templates[row.template_id] = _template(row.body)
    return _quoted_templates


async def for_quote(direct: Direct, codes: list[str], member_id: str, at: datetime) -> list[pricing.Coupon]:
    """The pricing engine's view of the presented coupons, unusable ones with their reason."""
    rows = {r.coupon_code: r for r in await direct.rows(_PRESENTED, {"codes": codes})} if codes else {}
    templates = await _templates(direct, {row.template_id for row in rows.values()})
    found = []
    for code in codes:
        row = rows.get(code)
        reason = refusal(row, member_id, at)
        if reason:
            found.append(pricing.Coupon(code, reject_reason=reason))
            continue
        t = templates[row.template_id]
        found.append(pricing.Coupon(code, t.kind, t.amount_fen, t.rate_bp, t.cap_fen, t.threshold_fen, t.categories,
                                    [t.org_path], name=t.name))
    return found


def budget_exhausted(campaign_id: str) -> FailedPrecondition:
    return FailedPrecondition("BUDGET_EXHAUSTED", "The campaign's budget is used up.", "活动预算已用完。",
                              campaign_id=campaign_id)


@dataclass(frozen=True)
class ReserveAsk:
    """One order's coupons and discounts to reserve, as the caller asked (checked)."""
    reservation_id: str
    member_id: str
    codes: list[str]
    order_id: str
    store_path: str
    ttl: timedelta
    adjustments: list  # the quote's, each paid by a campaign's budget (see _booked)


def _limited(body: dict) -> bool:
    """Whether a campaign checks a budget or a limit under its stats row's lock."""
    return bool(body["budget_fen"] or body["per_member_limit"] or body["per_store_daily_limit"])


async def reserve_many(db, asks: list[ReserveAsk], now) -> list:
    """Reserve the asks in the order given (a batch, database/batching.py), each after
    the ones before it: each one's expire time, or its refusal (it writes nothing). In
    a batch of more than one, an ask whose campaigns check a budget or a limit answers
    RUN_ALONE: those are checked under the stats rows' locks one reservation at a time."""
    codes = sorted({c for a in asks for c in a.codes})
    adjusted = {"adjusted_codes": sorted({x.coupon_code for a in asks for x in a.adjustments if x.coupon_code})}
    campaign_ids = sorted({x.campaign_id for a in asks for x in a.adjustments if x.campaign_id})
    # One round trip: the coupons locked, and what the budgets and limits need.
    locked, behind, paying = await execute_together(
        db, (_LOCK_COUPONS, {"codes": codes}), (_BEHIND, adjusted), (_PAYING, {**adjusted, "campaign_ids": campaign_ids}))
    rows, behind, bodies = {r.coupon_code: r for r in locked.all()}, dict(behind.all()), dict(paying.all())
    taken: set[str] = set()  # reserved by an ask before this one in the batch
    outcomes, reserved = [], []
    for ask in asks:
        discounts = _booked(ask.adjustments, behind)
        try:
            _check_coupons(ask, rows, taken, now)
            _check_campaigns(discounts, bodies)
        except DomainError as refusal:
            outcomes.append(refusal)
            continue
        if len(asks) > 1 and any(_limited(bodies[c]) for c in discounts):
            outcomes.append(RUN_ALONE)
            continue
        taken.update(ask.codes)
        reserved.append((ask, discounts))
        outcomes.append(now + ask.ttl)
    await send(db, _INSERT_RESERVATION, [
        {"reservation_id": a.reservation_id, "member_id": a.member_id, "order_id": a.order_id,
         "store_path": a.store_path, "state": HoldState.PENDING.value, "expire_time": now + a.ttl, "create_time": now}
        for a, _ in reserved])
    for a, _ in reserved:  # one statement each: a list of codes takes no executemany
        if a.codes:
            await send(db, _RESERVE_COUPONS, {"codes": a.codes, "reservation": a.reservation_id})
    day = local(now).date()
    await send(db, _INSERT_USES, [
        {"reservation_id": a.reservation_id, "campaign_id": campaign_id, "member_id": a.member_id,
         "store_path": a.store_path, "business_day": day, "amount_fen": amount, "state": HoldState.PENDING.value}
        for a, discounts in reserved for campaign_id, amount in sorted(discounts.items())])
    # Last: see the module's note. Alone, a reservation checks its campaigns' budgets and
    # limits under their rows' locks; in a batch none has any, and each row is added to once.
    if len(asks) == 1 and reserved:
        (ask, discounts), = reserved
        await _take_budgets(db, ask.member_id, ask.store_path, discounts, bodies, day)
    else:
        await _book_all(db, [(c, {"reserved_fen": amount}) for _, discounts in reserved for c, amount in discounts.items()])
    return outcomes


def _check_coupons(ask: ReserveAsk, rows: dict, taken: set[str], now) -> None:
    for code in ask.codes:
        reason = "COUPON_RESERVED" if code in taken else refusal(rows.get(code), ask.member_id, now)
        if reason == "COUPON_NOT_FOUND":
            raise not_found(code)
        if reason:
            raise FailedPrecondition(reason, f"Coupon {code} cannot be used: {reason}.",
                                     f"优惠券 {code} {REFUSALS_ZH[reason]}，不能使用。", coupon_code=code)


def _check_campaigns(discounts: dict[str, int], bodies: dict) -> None:
    for campaign_id in sorted(discounts):
        if campaign_id not in bodies:
            raise NotFound("CAMPAIGN_NOT_FOUND", "No such campaign.", "活动不存在。", campaign_id=campaign_id)


async def _take_budgets(db, member_id, store_path, discounts: dict[str, int], bodies: dict, day) -> None:
    for campaign_id, amount in sorted(discounts.items()):  # id order: no deadlock between two reservations
        body = bodies[campaign_id]
        if not _limited(body):
            await _book_stats(db, campaign_id, reserved_fen=amount)  # nothing to check under its lock
            continue
        s = await _add_to_stats(db, campaign_id, reserved_fen=amount)
        if body["budget_fen"] and s.discount_fen + s.reserved_fen > body["budget_fen"]:
            raise budget_exhausted(campaign_id)
        # The counts include this reservation's own use, hence "more than the limit".
        if body["per_member_limit"]:
            used = (await db.execute(_MEMBER_USES, {"campaign_id": campaign_id, "member_id": member_id})).scalar()
            if used > body["per_member_limit"]:
                raise FailedPrecondition("MEMBER_LIMIT_REACHED", "The member has used this offer as often as allowed.",
                                         "该会员已达本活动的使用次数上限。", campaign_id=campaign_id)
        if body["per_store_daily_limit"]:
            used = (await db.execute(_STORE_USES, {"campaign_id": campaign_id, "store_path": store_path,
                                                   "day": day})).scalar()
            if used > body["per_store_daily_limit"]:
                raise FailedPrecondition("STORE_DAILY_LIMIT_REACHED", "This store has used this offer as often as allowed today.",
                                         "本门店今日已达本活动的使用次数上限。", campaign_id=campaign_id)


@dataclass
class _Locked:
    """A reservation, locked, with its campaign uses and its coupons' codes (each with
    the campaign behind its template)."""

    row: object
    uses: list
    codes: list


async def _lock_reservations(db, reservation_ids: list[str]) -> dict[str, _Locked]:
    """The reservations locked (in id order), with their uses and codes, by id; one
    round trip: the reads after the lock run behind it, under it."""
    keys = {"keys": sorted(set(reservation_ids))}
    locked, uses, codes = await execute_together(db, (_LOCK_RESERVATIONS, keys), (_USES_OF_MANY, keys),
                                                 (_CODES_OF_MANY, keys))
    found = {row.reservation_id: _Locked(row, [], []) for row in locked.all()}
    for use in uses.all():
        found[use.reservation_id].uses.append(use)
    for reservation_id, code, campaign_id in codes.all():
        found[reservation_id].codes.append((code, campaign_id))
    return found


async def _lock_reservation(db, reservation_id: str) -> _Locked:
    found = (await _lock_reservations(db, [reservation_id])).get(reservation_id)
    if found is None:
        raise reservation_not_found(reservation_id)
    return found


def reservation_not_found(reservation_id: str) -> NotFound:
    return NotFound("RESERVATION_NOT_FOUND", "No such reservation.", "预占记录不存在。", reservation_id=reservation_id)


async def _finish(db, settled: list[tuple[_Locked, HoldState]]) -> None:
    """Settle the campaign uses of reservations: booked (CAPTURED) or given back."""
    for state in sorted({state for _, state in settled}):
        ended = [locked for locked, s in settled if s == state]
        await send(db, _SET_USES, [{"key": x.row.reservation_id, "new_state": state.value} for x in ended if x.uses])
        await send(db, _SET_RESERVATION, [{"key": x.row.reservation_id, "new_state": state.value} for x in ended])
    await send(db, _REDEEM_COUPONS, [{"key": locked.row.reservation_id} for locked, state in settled
                                     if state == HoldState.CAPTURED and locked.codes])
    await send(db, _RETURN_COUPONS, [{"key": locked.row.reservation_id} for locked, state in settled
                                     if state != HoldState.CAPTURED and locked.codes])
    additions = []
    for locked, state in settled:  # last, each row once, in id order: the stats rows are the hot ones (the module's note)
        for x in locked.uses:
            if state == HoldState.CAPTURED:
                coupons_here = sum(1 for _, campaign_id in locked.codes if campaign_id == x.campaign_id)
                additions.append((x.campaign_id, {"reserved_fen": -x.amount_fen, "discount_fen": x.amount_fen,
                                                  "orders": 1, "coupons_redeemed": coupons_here}))
            else:
                additions.append((x.campaign_id, {"reserved_fen": -x.amount_fen}))
    await _book_all(db, additions)


async def redeem_many(db, reservation_ids: list[str], now) -> list:
    """Redeem the reservations in the order given (a batch, database/batching.py): the
    codes each redeemed, or its refusal. One already redeemed (a retry with a new
    request_id) redeems nothing: nothing moves twice."""
    found = await _lock_reservations(db, reservation_ids)
    outcomes, settled, here = [], [], set()  # here: redeemed by an ask before this one in the batch
    for reservation_id in reservation_ids:
        locked = found.get(reservation_id)
        if locked is None:
            outcomes.append(reservation_not_found(reservation_id))
        elif locked.row.state == HoldState.CAPTURED.value or reservation_id in here:
            outcomes.append([])
        elif locked.row.state != HoldState.PENDING.value or locked.row.expire_time <= now:
            outcomes.append(FailedPrecondition("RESERVATION_EXPIRED", "The reservation lapsed or was released.",
                                               "预占已失效或已释放。", reservation_id=reservation_id))
        else:
            settled.append((locked, HoldState.CAPTURED))
            here.add(reservation_id)
            outcomes.append([code for code, _ in locked.codes])
    await _finish(db, settled)
    return outcomes


async def release(db, reservation_id: str, now) -> list[str]:
    locked = await _lock_reservation(db, reservation_id)
    row = locked.row
    if row.state == HoldState.CAPTURED.value:
        raise FailedPrecondition("RESERVATION_REDEEMED", "The reservation was already redeemed.", "该预占已核销。",
                                 reservation_id=reservation_id)
    if row.state != HoldState.PENDING.value:
        return []
    await _finish(db, [(locked, HoldState.EXPIRED if row.expire_time <= now else HoldState.RELEASED)])
    return [code for code, _ in locked.codes]


async def lapsed(db, now, limit: int = 500) -> list[str]:
    rows = await db.execute(select(reservations.c.reservation_id).where(
        reservations.c.state == HoldState.PENDING.value, reservations.c.expire_time <= now).limit(limit))
    return list(rows.scalars())


async def expire(db, reservation_id: str, now) -> None:
    locked = await _lock_reservation(db, reservation_id)
    if locked.row.state == HoldState.PENDING.value and locked.row.expire_time <= now:
        await _finish(db, [(locked, HoldState.EXPIRED)])


def spent(stats_row, budget_fen: int) -> bool:
    """Is a campaign's budget (0: none) given or held in full? Then no coupon drawing on
    it is issued."""
    return bool(budget_fen) and stats_row.discount_fen + stats_row.reserved_fen >= budget_fen


async def budget_spent(db, campaign_id: str) -> bool:
    row, budget = await stats(db, campaign_id)
    return row is not None and spent(row, budget)


async def stats(db, campaign_id: str) -> tuple[object, int]:
    body = (await db.execute(select(campaigns.c.body).where(campaigns.c.campaign_id == campaign_id))).scalar()
    if body is None:
        raise NotFound("CAMPAIGN_NOT_FOUND", "No such campaign.", "活动不存在。", campaign_id=campaign_id)
    row = (await db.execute(select(campaign_stats).where(campaign_stats.c.campaign_id == campaign_id))).one_or_none()
    return row, body["budget_fen"]


async def by_campaign(db, adjustments) -> dict[str, int]:
    """Fen by the campaign whose budget pays each adjustment (see _booked)."""
    codes = [a.coupon_code for a in adjustments if a.coupon_code]
    behind = dict((await db.execute(_BEHIND, {"adjusted_codes": codes})).all()) if codes else {}
    return _booked(adjustments, behind)


def _booked(adjustments, behind: dict[str, str]) -> dict[str, int]:
    """Fen by the campaign whose budget pays each adjustment: a campaign's own, or a
    coupon's under the campaign behind its template (behind; none: nobody's budget)."""
    booked: dict[str, int] = {}
    for a in adjustments:
        campaign_id = a.campaign_id or behind.get(a.coupon_code)
        if campaign_id:
            booked[campaign_id] = booked.get(campaign_id, 0) + a.amount_fen
    return booked


async def return_discounts(db, order_id: str, amounts: dict[str, int]) -> dict[str, int]:
    """Give the discounts of returned goods back to the campaigns that paid them: never
    more than a campaign gave the order. A use given back whole no longer counts as an
    order. Coupons stay used, as at the till."""
    rows = (await db.execute(select(reservations).where(reservations.c.order_id == order_id)
                             .with_for_update())).all()
    redeemed = [r for r in rows if r.state == HoldState.CAPTURED.value]
    if not redeemed:
        if rows:
            raise FailedPrecondition("RESERVATION_NOT_REDEEMED", "The order's discounts were never booked.",
                                     "该订单的优惠未曾核销。", order_id=order_id)
        raise NotFound("RESERVATION_NOT_FOUND", "No reservation for this order.", "该订单没有预占记录。", order_id=order_id)
    reservation_id = redeemed[0].reservation_id
    u = campaign_uses.c
    uses = {x.campaign_id: x for x in (await db.execute(select(campaign_uses).where(u.reservation_id == reservation_id))).all()}
    for campaign_id, amount in sorted(amounts.items()):
        use = uses.get(campaign_id)
        if use is None or use.returned_fen + amount > use.amount_fen:
            given = 0 if use is None else use.amount_fen - use.returned_fen
            raise FailedPrecondition("RETURN_EXCEEDS_DISCOUNT", f"Campaign {campaign_id} has {given} fen of this order's "
                                     f"discount left to give back, not {amount}.",
                                     f"活动 {campaign_id} 在本订单上可退回的优惠为 {given} 分，不足 {amount} 分。",
                                     campaign_id=campaign_id, order_id=order_id)
    for campaign_id, amount in sorted(amounts.items()):
        await send(db, update(campaign_uses).where(u.reservation_id == reservation_id, u.campaign_id == campaign_id)
                       .values(returned_fen=u.returned_fen + amount))
    for campaign_id, amount in sorted(amounts.items()):  # last, in id order: the hot rows (see the module's note)
        whole = uses[campaign_id].returned_fen + amount == uses[campaign_id].amount_fen
        await _book_stats(db, campaign_id, discount_fen=-amount, orders=-1 if whole else 0)
    return amounts
