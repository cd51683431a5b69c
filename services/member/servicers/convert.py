"""Proto <-> domain conversion for the member service's servicers. No rules here: only shapes."""

from google.type import date_pb2

from huiyuan.member.v1 import (
    card_pb2,
    care_pb2,
    member_pb2,
    org_pb2,
    payment_pin_pb2,
    tier_pb2,
)
from huiyuan.runtime.convert import enum_name, enum_value, from_timestamp, timestamp  # noqa: F401 - used by servicers too
from services.member.domain import care
from services.member.domain.attributes import AttributeDefinition, AttributeType
from services.member.domain.cards import Card, CardEvent, CardType
from services.member.domain.members import Gender, Member, ProfileInput
from services.member.domain.org import OrgNode
from services.member.domain.pins import PinState
from services.member.domain.tiers import Tier, TierChange
from services.member.domain.visits import VisitStats
from services.member.servicers.membership import benefit_message


def date_parts(value: date_pb2.Date) -> tuple[int, int, int]:
    return value.year, value.month, value.day


def to_date(text: str | None) -> date_pb2.Date | None:
    if not text:
        return None
    year, month, day = (int(p) for p in text.split("-"))
    return date_pb2.Date(year=year, month=month, day=day)


def org_node(node: OrgNode) -> org_pb2.OrgNode:
    return org_pb2.OrgNode(
        path=node.path,
        code=node.code,
        name=node.name,
        kind=enum_value(org_pb2.OrgNodeKind, "ORG_NODE_KIND", node.kind),
        time_zone=node.time_zone,
        parent_path=node.parent_path,
        create_time=timestamp(node.create_time),
    )


def attribute_value(value, definition: AttributeDefinition | None) -> member_pb2.AttributeValue:
    kind = definition.type if definition else AttributeType.TEXT
    if kind == AttributeType.NUMBER:
        return member_pb2.AttributeValue(number_value=str(value))
    if kind == AttributeType.DATE:
        return member_pb2.AttributeValue(date_value=to_date(value))
    if kind == AttributeType.CHOICE:
        return member_pb2.AttributeValue(choice_value=str(value))
    return member_pb2.AttributeValue(text_value=str(value))


def member(m: Member, definitions: dict[str, AttributeDefinition]) -> member_pb2.Member:
    return member_pb2.Member(
        member_id=m.member_id,
        name=m.name,
        gender=enum_value(member_pb2.Gender, "GENDER", m.gender),
        phone=m.phone,
        birthday=to_date(m.birthday),
        anniversary=to_date(m.anniversary),
        home_store_path=m.home_store_path,
        marketing_consent=m.marketing_consent,
        attributes={k: attribute_value(v, definitions.get(k)) for k, v in m.attributes.items()},
        channel=enum_value(member_pb2.RegistrationChannel, "REGISTRATION_CHANNEL", m.channel),
        registered_org_path=m.registered_org_path,
        tier_id=m.tier_id,
        create_time=timestamp(m.create_time),
        update_time=timestamp(m.update_time),
        tags=m.tags,
        automatic_tags=m.automatic_tags,
    )


def profile_input(m: member_pb2.Member) -> ProfileInput:
    attributes = {}
    for key, value in m.attributes.items():
        kind = value.WhichOneof("value") or "text_value"
        raw = getattr(value, kind)
        attributes[key] = (kind.removesuffix("_value"), date_parts(raw) if kind == "date_value" else raw)
    gender = enum_name(member_pb2.Gender, "GENDER", m.gender)
    return ProfileInput(
        name=m.name,
        phone=m.phone,
        gender=Gender(gender) if gender else Gender.UNSPECIFIED,
        birthday=date_parts(m.birthday),
        anniversary=date_parts(m.anniversary),
        home_store_path=m.home_store_path,
        marketing_consent=m.marketing_consent,
        attributes=attributes,
        tags=list(m.tags),
    )


def card(c: Card) -> card_pb2.Card:
    return card_pb2.Card(
        card_number=c.card_number,
        member_id=c.member_id,
        card_type_id=c.card_type_id,
        state=enum_value(card_pb2.CardState, "CARD_STATE", c.state),
        issued_org_path=c.issued_org_path,
        issue_time=timestamp(c.issue_time),
        expire_time=timestamp(c.expire_time),
        replaces_card_number=c.replaces_card_number,
        replaced_by_card_number=c.replaced_by_card_number,
    )


def card_type(t: CardType) -> card_pb2.CardType:
    return card_pb2.CardType(
        card_type_id=t.card_type_id,
        name=t.name,
        org_path=t.org_path,
        capabilities=[enum_value(card_pb2.CardCapability, "CARD_CAPABILITY", c) for c in t.capabilities],
        form=enum_value(card_pb2.CardForm, "CARD_FORM", t.form),
        default_tier_id=t.default_tier_id,
        validity_days=t.validity_days,
        create_time=timestamp(t.create_time),
    )


def card_event(row: CardEvent) -> card_pb2.CardEvent:
    return card_pb2.CardEvent(
        card_number=row.card_number,
        action=enum_value(card_pb2.CardAction, "CARD_ACTION", row.action),
        from_state=enum_value(card_pb2.CardState, "CARD_STATE", row.from_state) if row.from_state else 0,
        to_state=enum_value(card_pb2.CardState, "CARD_STATE", row.to_state),
        reason=row.reason,
        operator_id=row.operator_id,
        org_path=row.org_path,
        event_time=timestamp(row.event_time),
    )


def tier(t: Tier) -> tier_pb2.Tier:
    return tier_pb2.Tier(
        tier_id=t.tier_id,
        name=t.name,
        rank=t.rank,
        price_rate_bp=t.price_rate_bp,
        points_multiplier_bp=t.points_multiplier_bp,
        benefits=t.benefits,
        upgrade_spend_fen=t.upgrade_spend_fen,
        upgrade_top_up_fen=t.upgrade_top_up_fen,
        entitlements=[benefit_message(b) for b in t.entitlements],
    )


def tier_change(c: TierChange) -> tier_pb2.TierChange:
    return tier_pb2.TierChange(
        member_id=c.member_id,
        from_tier_id=c.from_tier_id,
        to_tier_id=c.to_tier_id,
        reason=c.reason,
        operator_id=c.operator_id,
        change_time=timestamp(c.change_time),
    )


def care_contact(c: care.CareContact) -> care_pb2.CareContact:
    return care_pb2.CareContact(
        contact_id=c.contact_id,
        member_id=c.member_id,
        channel=enum_value(care_pb2.CareChannel, "CARE_CHANNEL", c.channel),
        topic=enum_value(care_pb2.CareTopic, "CARE_TOPIC", c.topic),
        note=c.note,
        operator_id=c.operator_id,
        org_path=c.org_path,
        contact_time=timestamp(c.contact_time),
    )


def climb(change: TierChange | None, reached: Tier | None) -> dict:
    """The tier_change and tier_reached fields of an answer that may report a climb
    (RecordVisit, RecordTopUp): set when the member moved up, else left unset."""
    return {"tier_change": tier_change(change) if change else None, "tier_reached": tier(reached) if reached else None}


def attribute_definition(d: AttributeDefinition) -> member_pb2.AttributeDefinition:
    return member_pb2.AttributeDefinition(
        key=d.key,
        display_name=d.display_name,
        type=enum_value(member_pb2.AttributeType, "ATTRIBUTE_TYPE", d.type),
        choices=d.choices,
        required=d.required,
    )


def visit_stats(stats: VisitStats) -> member_pb2.VisitStats:
    return member_pb2.VisitStats(
        member_id=stats.member_id,
        visit_count=stats.visit_count,
        total_spend_fen=stats.total_spend_fen,
        last_visit_time=timestamp(stats.last_visit_time),
        stores=[
            member_pb2.StoreVisitStats(
                store_path=s.store_path,
                visit_count=s.visit_count,
                total_spend_fen=s.total_spend_fen,
                last_visit_time=timestamp(s.last_visit_time),
            )
            for s in stats.stores
        ],
    )


def pin_state(state: PinState) -> payment_pin_pb2.PaymentPinState:
    return payment_pin_pb2.PaymentPinState(
        member_id=state.member_id,
        pin_set=state.pin_hash is not None,
        failed_tries=state.failed_tries,
        unlock_time=timestamp(state.locked_until) if state.locked_until else None,
        update_time=timestamp(state.update_time) if state.update_time else None,
    )
