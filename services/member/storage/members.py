"""Members, their tags, the checkout's lookup, and the filters of lists and exports."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from huiyuan.database import Database, Transaction, insert_new, under, violated_unique
from huiyuan.database.engines import READ_ONLY
from services.member.domain import reports
from services.member.domain.cards import Card
from services.member.domain.care import DaySpan
from services.member.domain.members import (
    Channel,
    Gender,
    Member,
    MemberQuery,
    phone_taken,
)
from services.member.domain.tiers import Tier
from services.member.storage.cards import to_card
from services.member.storage.homes import home_set
from services.member.storage.rollups import record
from services.member.storage.tables import (
    cards,
    home_store_moves,
    member_auto_tags,
    member_tags,
    members,
    tiers,
    visit_stats,
)
from services.member.storage.tiers import to_tier


def to_member(row) -> Member:
    return Member(
        member_id=row.member_id,
        name=row.name,
        gender=Gender(row.gender),
        phone=row.phone,
        birthday=row.birthday,
        anniversary=row.anniversary,
        home_store_path=row.home_store_path,
        marketing_consent=row.marketing_consent,
        attributes=dict(row.attributes or {}),
        channel=Channel(row.channel),
        registered_org_path=row.registered_org_path,
        tier_id=row.tier_id or "",
        create_time=row.create_time,
        update_time=row.update_time,
        tags=list(row.tags or []),
        cashier_id=row.cashier_id,
        automatic_tags=list(getattr(row, "automatic_tags", None) or []),
    )


def member_values(member: Member) -> dict:
    return {
        "member_id": member.member_id,
        "name": member.name,
        "gender": member.gender.value,
        "phone": member.phone,
        "birthday": member.birthday,
        "anniversary": member.anniversary,
        "home_store_path": member.home_store_path,
        "marketing_consent": member.marketing_consent,
        "attributes": member.attributes,
        "channel": member.channel.value,
        "registered_org_path": member.registered_org_path,
        "tier_id": member.tier_id or None,
        "create_time": member.create_time,
        "update_time": member.update_time,
        "tags": member.tags,
        "cashier_id": member.cashier_id,
    }


_MEMBER = select(members).where(members.c.member_id == bindparam("member_id"))
_LOCK_MEMBER = _MEMBER.with_for_update()


async def get(tx: Transaction, member_id: str, *, for_update: bool = False) -> Member | None:
    row = (await tx.execute(_LOCK_MEMBER if for_update else _MEMBER, {"member_id": member_id})).one_or_none()
    return to_member(row) if row else None


async def get_by_phone(tx: Transaction, phone: str) -> Member | None:
    row = (await tx.execute(select(members).where(members.c.phone == phone))).one_or_none()
    return to_member(row) if row else None


def registration(values: dict) -> reports.Registration:
    """A member's registration as the reports count it (values: member_values())."""
    return reports.Registration(
        values["member_id"],
        values["registered_org_path"],
        values["channel"],
        values.get("cashier_id", ""),
        values["home_store_path"],
        values["tier_id"] or "",
        values["create_time"],
    )


async def insert_member(tx: Transaction, member: Member) -> None:
    """The phone's unique constraint settles races: of two concurrent registrations
    with one phone, exactly one succeeds. Counted in the reports' rollups."""
    values = member_values(member)
    try:
        await tx.execute(insert(members).values(**values))
    except IntegrityError as error:
        if violated_unique(error, "members", "phone"):
            raise phone_taken(member.phone) from None
        raise
    await index_tags(tx, {member.member_id: member.tags})
    await record(tx, reports.registered(registration(values)))
    await home_set(tx, [(member.member_id, member.home_store_path, member.create_time)])


async def update_member(tx: Transaction, member_id: str, changes: dict) -> None:
    """changes: column -> value; the tags' rows are written with the tags, and a move
    of the home store is kept (home_store_moves) and counted in the rollups."""
    if "tags" in changes:
        await reindex_tags(tx, member_id, changes["tags"])
    if "home_store_path" in changes:
        await _move_home(tx, member_id, changes["home_store_path"], changes.get("update_time"))
    try:
        await tx.execute(update(members).where(members.c.member_id == member_id).values(**changes))
    except IntegrityError as error:
        if violated_unique(error, "members", "phone"):
            raise phone_taken(changes["phone"]) from None
        raise


async def _move_home(tx: Transaction, member_id: str, to_path: str, when) -> None:
    """The member's home store moves to to_path (the member locked): kept, and their
    tier counted at the new store from now on."""
    current = await get(tx, member_id, for_update=True)
    if current is None or current.home_store_path == to_path:
        return
    move = reports.HomeMove(member_id, current.home_store_path, to_path, current.tier_id, when or current.update_time)
    await tx.execute(
        insert(home_store_moves).values(
            member_id=member_id,
            from_path=move.from_path,
            to_path=move.to_path,
            tier_id=move.tier_id,
            move_time=move.move_time,
        )
    )
    await record(tx, reports.home_moved(move))
    await home_set(tx, [(member_id, to_path, move.move_time)])


async def insert_new_members(tx: Transaction, rows: list[dict]) -> set[str]:
    """Insert rows (column -> value) whose phone is not registered yet, with their tags;
    the ids of those inserted (the others are left alone). Counted in the rollups."""
    inserted = set(await insert_new(tx, members, rows, conflict="phone"))
    await index_tags(tx, {row["member_id"]: row["tags"] for row in rows if row["member_id"] in inserted})
    await record(tx, [c for row in rows if row["member_id"] in inserted for c in reports.registered(registration(row))])
    await home_set(
        tx, [(r["member_id"], r["home_store_path"], r["create_time"]) for r in rows if r["member_id"] in inserted]
    )
    return inserted


async def reindex_tags(tx: Transaction, member_id: str, tags: list[str]) -> None:
    """The member_tags rows of a member whose members.tags is being replaced by tags."""
    await tx.execute(member_tags.delete().where(member_tags.c.member_id == member_id))
    await index_tags(tx, {member_id: tags})


async def index_tags(tx: Transaction, tags_by_member: dict[str, list[str]]) -> None:
    """The member_tags rows of members whose members.tags were just written."""
    rows = [{"member_id": m, "tag": t} for m, tags in tags_by_member.items() for t in tags]
    if rows:
        await tx.execute(member_tags.insert(), rows)


async def by_ids(tx: Transaction, member_ids: set[str]) -> list[Member]:
    return [to_member(row) for row in await tx.execute(select(members).where(members.c.member_id.in_(member_ids)))]


async def by_phones(tx: Transaction, phones: set[str]) -> list[Member]:
    return [to_member(row) for row in await tx.execute(select(members).where(members.c.phone.in_(phones)))]


def _where(query: MemberQuery):
    """The SQL condition a filter means."""
    c = members.c
    conditions = []
    if query.org_path:
        conditions.append(or_(under(c.registered_org_path, query.org_path), under(c.home_store_path, query.org_path)))
    if query.tier_id:
        conditions.append(c.tier_id == query.tier_id)
    if query.tag:
        conditions.append(  # set by hand, or automatically (SegmentService: storage/segments.py)
            or_(
                c.member_id.in_(select(member_tags.c.member_id).where(member_tags.c.tag == query.tag)),
                c.member_id.in_(select(member_auto_tags.c.member_id).where(member_auto_tags.c.tag == query.tag)),
            )
        )
    if query.channel:
        conditions.append(c.channel == query.channel.value)
    if query.name_contains:
        conditions.append(c.name.contains(query.name_contains, autoescape=True))
    if query.phone_suffix:
        conditions.append(c.phone.endswith(query.phone_suffix, autoescape=True))
    if query.registered_after:
        conditions.append(c.create_time >= query.registered_after)
    if query.registered_before:
        conditions.append(c.create_time < query.registered_before)
    if query.birthday_in:
        conditions.append(_day_in(c.birthday, query.birthday_in))
    if query.anniversary_in:
        conditions.append(_day_in(c.anniversary, query.anniversary_in))
    if query.no_visit_since:
        conditions.append(
            and_(
                c.create_time < query.no_visit_since,
                ~exists().where(
                    visit_stats.c.member_id == c.member_id, visit_stats.c.last_visit_time >= query.no_visit_since
                ),
            )
        )
    return and_(True, *conditions)


def _day_in(column, span: DaySpan):
    """SQL for DaySpan.takes_in: the kept 'YYYY-MM-DD' from its sixth character on."""
    day = func.substr(column, 6, 5)
    if span.wraps:
        return or_(day >= span.first, day <= span.last_taken_in)
    return and_(day >= span.first, day <= span.last_taken_in)


async def selected(tx: Transaction, query: MemberQuery, before_member_id: str | None, limit: int) -> list[Member]:
    """Newest first; ids sort by creation time, so the keyset is the id alone."""
    statement = select(members).where(_where(query))
    if before_member_id is not None:
        statement = statement.where(members.c.member_id < before_member_id)
    rows = await tx.execute(statement.order_by(members.c.member_id.desc()).limit(limit))
    return [to_member(r) for r in rows]


@asynccontextmanager
async def snapshot(database: Database) -> AsyncIterator[Transaction]:
    """One connection whose reads see one snapshot, for a long read streamed
    (a stream needs a transaction); on SQLite it takes no write lock meanwhile."""
    async with database.streaming() as connection:
        await connection.execution_options(**{READ_ONLY: True})
        yield connection


async def streamed(tx: Transaction, query: MemberQuery) -> AsyncIterator[Member]:
    """The members selected, newest first, streamed from the database (tx: a snapshot())."""
    result = await tx.stream(select(members).where(_where(query)).order_by(members.c.member_id.desc()))  # type: ignore[attr-defined]
    async for row in result:
        yield to_member(row)


# The checkout looks members up more than anything else: a lookup is one statement,
# the member with its tier and one row per card, built once here and run through
# Database.rows (straight on psycopg on PostgreSQL).
_TIER_AS = [c.label(f"tier_{c.name}") for c in tiers.c]
_CARD_AS = [c.label(f"card_{c.name}") for c in cards.c]
_PRESENTED = cards.alias("presented")
_MEMBER_CARDS = (
    select(members, *_TIER_AS, *_CARD_AS)
    .outerjoin(tiers, tiers.c.tier_id == members.c.tier_id)
    .outerjoin(cards, cards.c.member_id == members.c.member_id)
    .order_by(cards.c.issue_time.desc(), cards.c.card_number)
)
_LOOKUP_BY = {
    "member_id": _MEMBER_CARDS.where(members.c.member_id == bindparam("key")),
    "phone": _MEMBER_CARDS.where(members.c.phone == bindparam("key")),
    "card_number": _MEMBER_CARDS.where(
        members.c.member_id
        == select(_PRESENTED.c.member_id).where(_PRESENTED.c.card_number == bindparam("key")).scalar_subquery()
    ),
}


@dataclass
class MemberCards:
    member: Member
    tier: Tier | None
    cards: list[Card]


async def with_cards(database: Database, by: str, key: str) -> MemberCards | None:
    """The member found by member_id, phone or card_number (any card of theirs), with
    their tier and every card, newest first; None if there is no such member."""
    rows = await database.rows(_LOOKUP_BY[by], {"key": key})
    if not rows:
        return None
    first = rows[0]
    tier = to_tier(first, "tier_") if first.tier_tier_id is not None else None
    member_cards = [to_card(r, "card_") for r in rows if r.card_card_number is not None]
    return MemberCards(to_member(first), tier, member_cards)
