"""Member use cases: register, update, look up, list, custom attributes."""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from huiyuan.database.engines import under, violated_unique
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import AlreadyExists, NotFound
from services.member import domain, storage
from services.member.care import DaySpan
from services.member.storage import attribute_definitions, member_tags, members, visit_stats


def member_not_found(member_id: str) -> NotFound:
    return NotFound("MEMBER_NOT_FOUND", "No such member.", "会员不存在。", member_id=member_id)


def phone_taken(phone: str) -> AlreadyExists:
    return AlreadyExists("PHONE_ALREADY_REGISTERED", "This phone number is already registered.",
                         "该手机号已注册会员。", phone=domain.mask_phone(phone))


async def require_member(db, member_id: str, *, for_update: bool = False) -> domain.Member:
    member = await storage.get_member(db, member_id, for_update=for_update)
    if member is None:
        raise member_not_found(member_id)
    return member


async def register(session: AsyncSession, member: domain.Member) -> domain.Member:
    """Insert a validated member. The phone's unique constraint settles races: of two
    concurrent registrations with one phone, exactly one succeeds."""
    if await storage.get_member_by_phone(session, member.phone):
        raise phone_taken(member.phone)
    try:
        await session.execute(insert(members).values(**storage.member_values(member)))
    except IntegrityError as error:
        if violated_unique(error, "members", "phone"):
            raise phone_taken(member.phone)
        raise
    await storage.index_tags(session, {member.member_id: member.tags})
    return member


async def update_member(session: AsyncSession, member_id: str, changes: dict) -> domain.Member:
    await require_member(session, member_id, for_update=True)
    changes = {**changes, "update_time": utcnow()}
    if "tags" in changes:  # the column is written with the other changes, below
        await storage.reindex_tags(session, member_id, changes["tags"])
    if "phone" in changes:
        owner = await storage.get_member_by_phone(session, changes["phone"])
        if owner and owner.member_id != member_id:
            raise phone_taken(changes["phone"])
    try:
        await session.execute(update(members).where(members.c.member_id == member_id).values(**changes))
    except IntegrityError as error:
        if violated_unique(error, "members", "phone"):
            raise phone_taken(changes["phone"])
        raise
    return await storage.get_member(session, member_id)


@dataclass
class Lookup:
    member: domain.Member
    presented_card: domain.Card | None
    cards: list[domain.Card]
    tier: domain.Tier | None


async def lookup(direct, *, member_id="", phone="", card_number="", qr_member_id="", for_payment=False,
                 now: datetime) -> Lookup:
    """Find a member by exactly one key; a card presented for payment must be payable."""
    if card_number:
        found = await storage.member_with_cards(direct, "card_number", card_number)
        presented = next((c for c in found.cards if c.card_number == card_number), None) if found else None
        if presented is None:
            raise NotFound("CARD_NOT_FOUND", "No such card.", "卡号不存在。", card_number=card_number)
        if for_payment:
            domain.ensure_payable(presented, now)
        return Lookup(found.member, presented, found.cards, found.tier)
    if phone:
        found = await storage.member_with_cards(direct, "phone", phone)
        if found is None:
            raise NotFound("MEMBER_NOT_FOUND", "No member has this phone number.", "该手机号未注册会员。")
    else:
        found = await storage.member_with_cards(direct, "member_id", member_id or qr_member_id)
        if found is None:
            raise member_not_found(member_id or qr_member_id)
    return Lookup(found.member, None, found.cards, found.tier)


async def find(db, member_ids, phones) -> dict[str, domain.Member]:
    """The members named, each under the key as given; keys naming nobody are left out."""
    by_phone = {}
    for key in phones:
        if phone := domain.normalise_phone(key):
            by_phone.setdefault(phone, []).append(key)
    found = {}
    if member_ids:
        for row in await db.execute(select(members).where(members.c.member_id.in_(set(member_ids)))):
            found[row.member_id] = storage.to_member(row)
    if by_phone:
        for row in await db.execute(select(members).where(members.c.phone.in_(by_phone))):
            found.update((key, storage.to_member(row)) for key in by_phone[row.phone])
    return found


@dataclass
class MemberQuery:
    org_path: str = ""
    tier_id: str = ""
    channel: domain.Channel | None = None
    name_contains: str = ""
    phone_suffix: str = ""
    registered_after: datetime | None = None
    registered_before: datetime | None = None
    tag: str = ""
    birthday_in: DaySpan | None = None
    anniversary_in: DaySpan | None = None
    no_visit_since: datetime | None = None
    fields: list = field(default_factory=list)

    def where(self):
        """The SQL condition this filter means."""
        c = members.c
        conditions = []
        if self.org_path:
            conditions.append(or_(under(c.registered_org_path, self.org_path), under(c.home_store_path, self.org_path)))
        if self.tier_id:
            conditions.append(c.tier_id == self.tier_id)
        if self.tag:
            conditions.append(c.member_id.in_(select(member_tags.c.member_id).where(member_tags.c.tag == self.tag)))
        if self.channel:
            conditions.append(c.channel == self.channel.value)
        if self.name_contains:
            conditions.append(c.name.contains(self.name_contains, autoescape=True))
        if self.phone_suffix:
            conditions.append(c.phone.endswith(self.phone_suffix, autoescape=True))
        if self.registered_after:
            conditions.append(c.create_time >= self.registered_after)
        if self.registered_before:
            conditions.append(c.create_time < self.registered_before)
        if self.birthday_in:
            conditions.append(_day_in(c.birthday, self.birthday_in))
        if self.anniversary_in:
            conditions.append(_day_in(c.anniversary, self.anniversary_in))
        if self.no_visit_since:
            conditions.append(and_(c.create_time < self.no_visit_since, ~exists().where(
                visit_stats.c.member_id == c.member_id, visit_stats.c.last_visit_time >= self.no_visit_since)))
        return and_(True, *conditions)


def _day_in(column, span: DaySpan):
    """SQL for DaySpan.takes_in: the kept 'YYYY-MM-DD' from its sixth character on."""
    day = func.substr(column, 6, 5)
    if span.wraps:
        return or_(day >= span.first, day <= span.last_taken_in)
    return and_(day >= span.first, day <= span.last_taken_in)


async def list_members(db, query: MemberQuery, before_member_id: str | None, limit: int) -> list[domain.Member]:
    """Newest first; ids sort by creation time, so the keyset is the id alone."""
    statement = select(members).where(query.where())
    if before_member_id is not None:
        statement = statement.where(members.c.member_id < before_member_id)
    rows = await db.execute(statement.order_by(members.c.member_id.desc()).limit(limit))
    return [storage.to_member(r) for r in rows]


async def create_attribute_definition(session: AsyncSession, definition: domain.AttributeDefinition):
    try:
        await session.execute(insert(attribute_definitions).values(
            key=definition.key, display_name=definition.display_name, type=definition.type.value,
            choices=definition.choices, required=definition.required))
    except IntegrityError as error:
        if violated_unique(error, "attribute_definitions", "key"):
            raise AlreadyExists("ATTRIBUTE_EXISTS", f"Attribute '{definition.key}' exists already.",
                                f"属性 '{definition.key}' 已存在。", key=definition.key)
        raise
    return definition
