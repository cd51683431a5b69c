"""Contacts with members (回访记录): kept once each, read newest first."""

from huiyuan.database import Transaction
from services.member.domain.care import CareContact, check_consent
from services.member.storage import contacts as stored
from services.member.use_cases.members import require_member


async def record_contact(tx: Transaction, contact: CareContact) -> CareContact:
    member = await require_member(tx, contact.member_id)
    check_consent(contact, member.marketing_consent)
    await stored.insert_contact(tx, contact)
    return contact


async def contacts_of(tx: Transaction, member_id: str, before_id: str | None, limit: int) -> list[CareContact]:
    await require_member(tx, member_id)
    return await stored.contacts_of(tx, member_id, before_id, limit)
