"""Members: register, update, look up, find, list; custom attributes."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from huiyuan.database import Database, Transaction
from huiyuan.runtime import clock
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.requests import store_of
from services.member.domain import members as rules
from services.member.domain.attributes import AttributeDefinition
from services.member.domain.cards import Card, card_not_found, ensure_payable
from services.member.domain.members import Channel, Member, MemberQuery, ProfileInput
from services.member.domain.qr import sign_qr_token
from services.member.domain.tiers import Tier
from services.member.storage import attributes, members as stored
from services.member.use_cases.membership_tiers import tier_in_force
from services.member.use_cases.org import require_org_node


async def require_member(tx: Transaction, member_id: str, *, for_update: bool = False) -> Member:
    member = await stored.get(tx, member_id, for_update=for_update)
    if member is None:
        raise rules.member_not_found(member_id)
    return member


async def get_member(tx: Transaction, member_id: str) -> tuple[Member, dict[str, AttributeDefinition]]:
    """The member, and the definitions of the attributes they have."""
    member = await require_member(tx, member_id)
    return member, await attributes.definitions_by_key(tx, member.attributes.keys())


async def checked_profile(
    database: Database, violations: Violations, profile: ProfileInput, prefix: str, *, partial: set[str] | None = None
) -> tuple[dict, dict[str, AttributeDefinition]]:
    """A profile checked against the attributes the chain defines (rules.check_profile),
    before any transaction: the values to store, and those definitions."""
    async with database.reading() as tx:
        definitions = await attributes.definitions_by_key(tx)
    return rules.check_profile(violations, profile, prefix, definitions, clock.today(), partial=partial), definitions


async def register(
    tx: Transaction, values: dict, channel: Channel, org_path: str, now: datetime, cashier_id: str = ""
) -> Member:
    """A member with the checked values, registered at org_path (a node there is) by
    cashier_id ("": nobody named) and homed at the store they named (one there is), else
    at the registering store."""
    member = rules.new_member(new_id("m"), values, channel, org_path, store_of(org_path), now, cashier_id)
    await require_org_node(tx, org_path, "actor.org_path")
    if member.home_store_path:
        await require_org_node(tx, member.home_store_path, "member.home_store_path")
    if await stored.get_by_phone(tx, member.phone):
        raise rules.phone_taken(member.phone)
    await stored.insert_member(tx, member)
    return member


async def update_member(tx: Transaction, member_id: str, values: dict, attribute_keys: set[str]) -> Member:
    """The checked values of a member's profile changed; with attribute_keys (a mask of
    attributes.<key>), only those of their attributes."""
    changes = dict(values)
    if attribute_keys:
        current = await require_member(tx, member_id)
        changes["attributes"] = rules.merged_attributes(current.attributes, values["attributes"], attribute_keys)
    if changes.get("home_store_path"):
        await require_org_node(tx, changes["home_store_path"], "member.home_store_path")
    await require_member(tx, member_id, for_update=True)
    changes["update_time"] = utcnow()
    if "phone" in changes:
        owner = await stored.get_by_phone(tx, changes["phone"])
        if owner and owner.member_id != member_id:
            raise rules.phone_taken(changes["phone"])
    await stored.update_member(tx, member_id, changes)
    return await require_member(tx, member_id)


@dataclass
class Lookup:
    member: Member
    presented_card: Card | None
    cards: list[Card]
    tier: Tier | None


async def lookup(
    database: Database,
    *,
    member_id: str = "",
    phone: str = "",
    card_number: str = "",
    qr_member_id: str = "",
    for_payment: bool = False,
    now: datetime,
) -> Lookup:
    """Find a member by exactly one key; a card presented for payment must be payable."""
    if card_number:
        found = await stored.with_cards(database, "card_number", card_number)
        presented = next((c for c in found.cards if c.card_number == card_number), None) if found else None
        if found is None or presented is None:
            raise card_not_found(card_number)
        if for_payment:
            ensure_payable(presented, now)
        return Lookup(found.member, presented, found.cards, await _tier(database, found, now))
    if phone:
        found = await stored.with_cards(database, "phone", phone)
        if found is None:
            raise rules.phone_not_registered()
    else:
        found = await stored.with_cards(database, "member_id", member_id or qr_member_id)
        if found is None:
            raise rules.member_not_found(member_id or qr_member_id)
    return Lookup(found.member, None, found.cards, await _tier(database, found, now))


async def _tier(database: Database, found, now: datetime):
    """The member's tier, or the better one a paid term in force gives (memberships)."""
    return await tier_in_force(database, found.member.member_id, found.tier, now)


async def lookup_for_till(database: Database, *, counter_view: bool, **keys) -> tuple[Lookup, dict]:
    """lookup(), with the definitions of the member's attributes; in the counter's view
    (what a till needs, no more: rules.counter_view) when asked."""
    found = await lookup(database, **keys)
    definitions: dict[str, AttributeDefinition] = {}
    if found.member.attributes:
        async with database.reading() as tx:
            definitions = await attributes.definitions_by_key(tx, found.member.attributes.keys())
    if counter_view:
        found.member = rules.counter_view(found.member)
    return found, definitions


async def find(tx: Transaction, member_ids, phones) -> tuple[dict[str, Member], dict[str, AttributeDefinition]]:
    """The members named, each under the key as given (keys naming nobody are left
    out), and the definitions of their attributes."""
    by_phone: dict[str, list[str]] = {}
    for key in phones:
        if phone := rules.normalise_phone(key):
            by_phone.setdefault(phone, []).append(key)
    found: dict[str, Member] = {}
    if member_ids:
        for member in await stored.by_ids(tx, set(member_ids)):
            found[member.member_id] = member
    if by_phone:
        for member in await stored.by_phones(tx, set(by_phone)):
            found.update((key, member) for key in by_phone[member.phone])
    definitions = await attributes.definitions_by_key(tx, {key for m in found.values() for key in m.attributes})
    return found, definitions


async def list_members(
    tx: Transaction, query: MemberQuery, before_member_id: str | None, limit: int
) -> tuple[list[Member], dict[str, AttributeDefinition]]:
    """Newest first, and the definitions of their attributes."""
    found = await stored.selected(tx, query, before_member_id, limit)
    return found, await attributes.definitions_by_key(tx, {k for m in found for k in m.attributes})


async def issue_qr_token(
    tx: Transaction, member_id: str, ttl: timedelta, secret: str, now: datetime
) -> tuple[str, datetime]:
    """A QR code of the member's, good for ttl from now: its token and expiry."""
    await require_member(tx, member_id)
    expire = now + ttl
    return sign_qr_token(member_id, expire, secret), expire


async def create_attribute_definition(tx: Transaction, definition: AttributeDefinition) -> AttributeDefinition:
    await attributes.insert_definition(tx, definition)
    return definition


async def list_attribute_definitions(tx: Transaction, after_key: str | None, limit: int) -> list[AttributeDefinition]:
    return await attributes.definitions_after(tx, after_key, limit)
