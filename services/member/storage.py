"""Member service tables and the queries on them (SQLAlchemy Core).

The rules live in domain.py; this module only maps rows to domain objects and back.
"""

from dataclasses import dataclass

from sqlalchemy import (
    JSON, BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table, UniqueConstraint, and_, bindparam,
    or_, select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from huiyuan.database import idempotency
from huiyuan.database.engines import UtcDateTime, new_metadata
from huiyuan.database.direct import Direct
from services.member import care, domain

metadata = new_metadata()
idempotency_keys = idempotency.define_table(metadata)

org_nodes = Table(
    "org_nodes", metadata,
    Column("path", String(140), primary_key=True),
    Column("code", String(32), nullable=False),
    Column("name", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("parent_path", String(140), ForeignKey("org_nodes.path"), nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
)

tiers = Table(
    "tiers", metadata,
    Column("tier_id", String(40), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("price_rate_bp", Integer, nullable=False),
    Column("points_multiplier_bp", Integer, nullable=False),
    Column("benefits", String(2000), nullable=False),
    Column("upgrade_spend_fen", BigInteger, nullable=False, server_default="0"),
    Column("upgrade_top_up_fen", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("rank"),
)

members = Table(
    "members", metadata,
    Column("member_id", String(40), primary_key=True),  # time-sortable: newest = largest
    Column("name", String(64), nullable=False),
    Column("gender", String(16), nullable=False),
    Column("phone", String(11), nullable=False),
    Column("birthday", String(10), nullable=True),  # 'YYYY-MM-DD', '0000-MM-DD' without a year
    Column("anniversary", String(10), nullable=True),
    Column("home_store_path", String(140), nullable=False),
    Column("marketing_consent", Boolean, nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("channel", String(24), nullable=False),
    Column("registered_org_path", String(140), nullable=False),
    Column("tier_id", String(40), ForeignKey("tiers.tier_id"), nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    Column("tags", JSON, nullable=False, server_default="[]"),  # read with the member; member_tags finds them
    UniqueConstraint("phone"),
    Index("ix_members_registered_org_path", "registered_org_path"),
    Index("ix_members_home_store_path", "home_store_path"),
    Index("ix_members_tier_id", "tier_id"),
)

# A member's tags once more, a row each, so that a segment selects by tag through an
# index; written only by index_tags() and reindex_tags(), in the transaction that
# writes the members.tags they mirror.
member_tags = Table(
    "member_tags", metadata,
    Column("member_id", String(40), ForeignKey("members.member_id"), primary_key=True),
    Column("tag", String(16), primary_key=True),
    Index("ix_member_tags_tag_member_id", "tag", "member_id"),
)

attribute_definitions = Table(
    "attribute_definitions", metadata,
    Column("key", String(32), primary_key=True),
    Column("display_name", String(64), nullable=False),
    Column("type", String(16), nullable=False),
    Column("choices", JSON, nullable=False),
    Column("required", Boolean, nullable=False),
)

card_types = Table(
    "card_types", metadata,
    Column("card_type_id", String(40), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("org_path", String(140), ForeignKey("org_nodes.path"), nullable=False),
    Column("capabilities", JSON, nullable=False),
    Column("form", String(16), nullable=False),
    Column("default_tier_id", String(40), ForeignKey("tiers.tier_id"), nullable=True),
    Column("validity_days", Integer, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
)

cards = Table(
    "cards", metadata,
    Column("card_number", String(20), primary_key=True),
    Column("member_id", String(40), ForeignKey("members.member_id"), nullable=False, index=True),
    Column("card_type_id", String(40), ForeignKey("card_types.card_type_id"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("issued_org_path", String(140), nullable=False),
    Column("issue_time", UtcDateTime, nullable=False),
    Column("expire_time", UtcDateTime, nullable=True),
    Column("replaces_card_number", String(20), nullable=False),
    Column("replaced_by_card_number", String(20), nullable=False),
)

card_events = Table(
    "card_events", metadata,
    Column("event_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("card_number", String(20), ForeignKey("cards.card_number"), nullable=False, index=True),
    Column("action", String(16), nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("reason", String(256), nullable=False),
    Column("operator_id", String(64), nullable=False),
    Column("org_path", String(140), nullable=False),
    Column("event_time", UtcDateTime, nullable=False),
)

tier_changes = Table(
    "tier_changes", metadata,
    Column("change_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("member_id", String(40), ForeignKey("members.member_id"), nullable=False, index=True),
    Column("from_tier_id", String(40), nullable=True),
    Column("to_tier_id", String(40), nullable=False),
    Column("reason", String(256), nullable=False),
    Column("operator_id", String(64), nullable=False),
    Column("change_time", UtcDateTime, nullable=False),
)

visits = Table(  # one row per order: what makes RecordVisit idempotent by order_id
    "visits", metadata,
    Column("order_id", String(64), primary_key=True),
    Column("member_id", String(40), ForeignKey("members.member_id"), nullable=False),
    Column("store_path", String(140), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("visit_time", UtcDateTime, nullable=False),
)

visit_returns = Table(  # one row per return: what makes RecordReturn idempotent by return_id
    "visit_returns", metadata,
    Column("return_id", String(64), primary_key=True),
    Column("order_id", String(64), ForeignKey("visits.order_id"), nullable=False, index=True),
    Column("amount_fen", BigInteger, nullable=False),
    Column("return_time", UtcDateTime, nullable=False),
)

top_ups = Table(  # one row per top-up at a till: what its principal counts toward the tiers
    "top_ups", metadata,
    Column("top_up_id", String(64), primary_key=True),  # the wallet's id: a second call changes nothing
    Column("member_id", String(40), ForeignKey("members.member_id"), nullable=False, index=True),
    Column("store_path", String(140), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("top_up_time", UtcDateTime, nullable=False),
    Column("refund_time", UtcDateTime, nullable=True),  # set when refunded: it counts no more
)

care_contacts = Table(  # 回访记录: one row per contact, never changed
    "care_contacts", metadata,
    Column("contact_id", String(40), primary_key=True),  # time-sortable: newest = largest
    Column("member_id", String(40), ForeignKey("members.member_id"), nullable=False, index=True),
    Column("channel", String(16), nullable=False),
    Column("topic", String(16), nullable=False),
    Column("note", String(500), nullable=False),
    Column("operator_id", String(64), nullable=False),
    Column("org_path", String(140), nullable=False),
    Column("contact_time", UtcDateTime, nullable=False),
)

# A member's payment PIN (services/member/pins.py): a slow hash, never the PIN, and
# its wrong tries in a row.
payment_pins = Table(
    "payment_pins", metadata,
    Column("member_id", String(40), ForeignKey("members.member_id"), primary_key=True),
    Column("pin_hash", String(160), nullable=False),  # 'scrypt$N$r$p$salt$hash'
    Column("failed_tries", Integer, nullable=False),
    Column("locked_until", UtcDateTime, nullable=True),
    Column("update_time", UtcDateTime, nullable=False),
)

visit_stats = Table(
    "visit_stats", metadata,
    Column("member_id", String(40), ForeignKey("members.member_id"), primary_key=True),
    Column("store_path", String(140), primary_key=True),
    Column("visit_count", BigInteger, nullable=False),
    Column("total_spend_fen", BigInteger, nullable=False),
    Column("last_visit_time", UtcDateTime, nullable=False),
)

Db = AsyncSession | AsyncConnection

# ---------------------------------------------------------------- row -> domain


def to_org_node(row) -> domain.OrgNode:
    return domain.OrgNode(row.path, row.code, row.name, domain.OrgKind(row.kind), row.time_zone,
                          row.parent_path or "", row.create_time)


def to_member(row) -> domain.Member:
    return domain.Member(
        member_id=row.member_id, name=row.name, gender=domain.Gender(row.gender), phone=row.phone,
        birthday=row.birthday, anniversary=row.anniversary, home_store_path=row.home_store_path,
        marketing_consent=row.marketing_consent, attributes=dict(row.attributes or {}),
        channel=domain.Channel(row.channel), registered_org_path=row.registered_org_path,
        tier_id=row.tier_id or "", create_time=row.create_time, update_time=row.update_time, tags=list(row.tags or []),
    )


def member_values(member: domain.Member) -> dict:
    return {
        "member_id": member.member_id, "name": member.name, "gender": member.gender.value, "phone": member.phone,
        "birthday": member.birthday, "anniversary": member.anniversary, "home_store_path": member.home_store_path,
        "marketing_consent": member.marketing_consent, "attributes": member.attributes,
        "channel": member.channel.value, "registered_org_path": member.registered_org_path,
        "tier_id": member.tier_id or None, "create_time": member.create_time, "update_time": member.update_time,
        "tags": member.tags,
    }


# prefix: how a join labelled the columns (the lookup's "card_" and "tier_").
def to_card(row, prefix: str = "") -> domain.Card:
    def col(name):
        return getattr(row, prefix + name)
    return domain.Card(col("card_number"), col("member_id"), col("card_type_id"), domain.CardState(col("state")),
                       col("issued_org_path"), col("issue_time"), col("expire_time"),
                       col("replaces_card_number"), col("replaced_by_card_number"))


def to_care_contact(row) -> care.CareContact:
    return care.CareContact(row.contact_id, row.member_id, care.CareChannel(row.channel), care.CareTopic(row.topic),
                            row.note, row.operator_id, row.org_path, row.contact_time)


def to_tier(row, prefix: str = "") -> domain.Tier:
    def col(name):
        return getattr(row, prefix + name)
    return domain.Tier(col("tier_id"), col("name"), col("rank"), col("price_rate_bp"), col("points_multiplier_bp"),
                       col("benefits"), col("upgrade_spend_fen"), col("upgrade_top_up_fen"))


def to_attribute_definition(row) -> domain.AttributeDefinition:
    return domain.AttributeDefinition(row.key, row.display_name, domain.AttributeType(row.type),
                                      list(row.choices or []), row.required)


# ---------------------------------------------------------------- reads


async def get_org_node(db: Db, path: str) -> domain.OrgNode | None:
    row = (await db.execute(select(org_nodes).where(org_nodes.c.path == path))).one_or_none()
    return to_org_node(row) if row else None


async def org_paths_existing(db: Db, paths: set[str]) -> set[str]:
    found: set[str] = set()
    paths = list(paths)
    for i in range(0, len(paths), 1000):
        chunk = paths[i:i + 1000]
        found |= set((await db.execute(select(org_nodes.c.path).where(org_nodes.c.path.in_(chunk)))).scalars())
    return found


_MEMBER = select(members).where(members.c.member_id == bindparam("member_id"))
_LOCK_MEMBER = _MEMBER.with_for_update()


async def get_member(db: Db, member_id: str, *, for_update: bool = False) -> domain.Member | None:
    row = (await db.execute(_LOCK_MEMBER if for_update else _MEMBER, {"member_id": member_id})).one_or_none()
    return to_member(row) if row else None


async def reindex_tags(db: Db, member_id: str, tags: list[str]) -> None:
    """The member_tags rows of a member whose members.tags is being replaced by tags."""
    await db.execute(member_tags.delete().where(member_tags.c.member_id == member_id))
    await index_tags(db, {member_id: tags})


async def index_tags(db: Db, tags_by_member: dict[str, list[str]]) -> None:
    """The member_tags rows of members whose members.tags were just written."""
    rows = [{"member_id": m, "tag": t} for m, tags in tags_by_member.items() for t in tags]
    if rows:
        await db.execute(member_tags.insert(), rows)


async def get_member_by_phone(db: Db, phone: str) -> domain.Member | None:
    row = (await db.execute(select(members).where(members.c.phone == phone))).one_or_none()
    return to_member(row) if row else None


async def get_card(db: Db, card_number: str, *, for_update: bool = False) -> domain.Card | None:
    query = select(cards).where(cards.c.card_number == card_number)
    if for_update:
        query = query.with_for_update()
    row = (await db.execute(query)).one_or_none()
    return to_card(row) if row else None


async def cards_of(db: Db, member_id: str, after: list | None, limit: int) -> list[domain.Card]:
    """Newest first (issue_time, latest first, then card_number); those after the
    position `after` ([issue_time, card_number])."""
    query = select(cards).where(cards.c.member_id == member_id)
    if after is not None:
        issued, number = after
        query = query.where(or_(cards.c.issue_time < issued,
                                and_(cards.c.issue_time == issued, cards.c.card_number > number)))
    return [to_card(r) for r in await db.execute(
        query.order_by(cards.c.issue_time.desc(), cards.c.card_number).limit(limit))]


async def get_tier(db: Db, tier_id: str) -> domain.Tier | None:
    row = (await db.execute(select(tiers).where(tiers.c.tier_id == tier_id))).one_or_none()
    return to_tier(row) if row else None


async def attribute_definitions_after(db: Db, after_key: str | None, limit: int) -> list[domain.AttributeDefinition]:
    """By key; those after after_key."""
    query = select(attribute_definitions).order_by(attribute_definitions.c.key).limit(limit)
    if after_key is not None:
        query = query.where(attribute_definitions.c.key > after_key)
    return [to_attribute_definition(r) for r in await db.execute(query)]


async def attribute_definitions_by_key(db: Db, keys=None) -> dict[str, domain.AttributeDefinition]:
    """All definitions, or only those of the given keys (none read when keys is empty)."""
    query = select(attribute_definitions).order_by(attribute_definitions.c.key)
    if keys is not None:
        if not keys:
            return {}
        query = query.where(attribute_definitions.c.key.in_(sorted(keys)))
    return {r.key: to_attribute_definition(r) for r in await db.execute(query)}


# The checkout looks members up more than anything else: a lookup is one statement,
# the member with its tier and one row per card, built once here and run through
# Direct (straight on psycopg on PostgreSQL).
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
    "card_number": _MEMBER_CARDS.where(members.c.member_id == select(_PRESENTED.c.member_id).where(
        _PRESENTED.c.card_number == bindparam("key")).scalar_subquery()),
}


@dataclass
class MemberCards:
    member: domain.Member
    tier: domain.Tier | None
    cards: list[domain.Card]


async def member_with_cards(direct: Direct, by: str, key: str) -> MemberCards | None:
    """The member found by member_id, phone or card_number (any card of theirs), with
    their tier and every card, newest first; None if there is no such member."""
    rows = await direct.rows(_LOOKUP_BY[by], {"key": key})
    if not rows:
        return None
    first = rows[0]
    tier = to_tier(first, "tier_") if first.tier_tier_id is not None else None
    member_cards = [to_card(r, "card_") for r in rows if r.card_card_number is not None]
    return MemberCards(to_member(first), tier, member_cards)
