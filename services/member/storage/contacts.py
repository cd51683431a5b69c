"""Contacts with members (回访记录): kept once each, read newest first."""

from sqlalchemy import insert, select

from huiyuan.database import Transaction
from services.member.domain.care import CareChannel, CareContact, CareTopic
from services.member.storage.tables import care_contacts


def to_care_contact(row) -> CareContact:
    return CareContact(
        row.contact_id,
        row.member_id,
        CareChannel(row.channel),
        CareTopic(row.topic),
        row.note,
        row.operator_id,
        row.org_path,
        row.contact_time,
    )


async def insert_contact(tx: Transaction, contact: CareContact) -> None:
    await tx.execute(
        insert(care_contacts).values(
            contact_id=contact.contact_id,
            member_id=contact.member_id,
            channel=contact.channel.value,
            topic=contact.topic.value,
            note=contact.note,
            operator_id=contact.operator_id,
            org_path=contact.org_path,
            contact_time=contact.contact_time,
        )
    )


async def contacts_of(tx: Transaction, member_id: str, before_id: str | None, limit: int) -> list[CareContact]:
    """Newest first (ids sort by time); those before before_id."""
    query = select(care_contacts).where(care_contacts.c.member_id == member_id)
    if before_id is not None:
        query = query.where(care_contacts.c.contact_id < before_id)
    rows = await tx.execute(query.order_by(care_contacts.c.contact_id.desc()).limit(limit))
    return [to_care_contact(r) for r in rows]
