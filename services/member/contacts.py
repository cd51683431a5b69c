"""Contacts with members (回访记录): kept once each, read newest first."""

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.member import care, storage
from services.member.members import require_member
from services.member.storage import care_contacts


async def record_contact(session: AsyncSession, contact: care.CareContact) -> care.CareContact:
    member = await require_member(session, contact.member_id)
    care.check_consent(contact, member.marketing_consent)
    await session.execute(insert(care_contacts).values(
        contact_id=contact.contact_id, member_id=contact.member_id, channel=contact.channel.value,
        topic=contact.topic.value, note=contact.note, operator_id=contact.operator_id, org_path=contact.org_path,
        contact_time=contact.contact_time))
    return contact


async def contacts_of(db, member_id: str, before_id: str | None, limit: int) -> list[care.CareContact]:
    await require_member(db, member_id)
    query = select(care_contacts).where(care_contacts.c.member_id == member_id)
    if before_id is not None:
        query = query.where(care_contacts.c.contact_id < before_id)
    rows = await db.execute(query.order_by(care_contacts.c.contact_id.desc()).limit(limit))
    return [storage.to_care_contact(r) for r in rows]
