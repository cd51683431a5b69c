"""Unit tests of the member domain rules and shared runtime pieces (no server, no SQL)."""

import json
import logging
from datetime import UTC, date, datetime, timedelta

import pytest

from huiyuan.runtime import logs, pagination
from huiyuan.runtime.errors import (
    DomainError,
    FailedPrecondition,
    Unauthenticated,
    Violations,
)
from services.member.domain import attributes, cards, fields, members, org, qr, tiers

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("13812345678", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        ("0086-138-1234-5678", "13812345678"),
        ("(138) 1234-5678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("12812345678", None),  # 12x is not a mobile range
        ("1381234567", None),
        ("138123456789", None),
        ("", None),
        ("abc", None),
    ],
)
def test_phone_normalisation(raw, expected):
    assert members.normalise_phone(raw) == expected


def test_org_kinds_go_one_level_down():
    assert org.child_kind(None) == org.OrgKind.HQ
    assert org.child_kind(org.OrgKind.HQ) == org.OrgKind.REGION
    assert org.child_kind(org.OrgKind.STORE) == org.OrgKind.TERMINAL
    assert org.child_kind(org.OrgKind.TERMINAL) is None
    assert org.store_of("hq/east/sh-001/pos-1") == "hq/east/sh-001"
    assert org.store_of("hq/east") == ""


def _card(state=cards.CardState.ACTIVE, expire=None):
    return cards.Card("8000000000000001", "m_1", "ct_1", state, "hq/east/sh-001", NOW, expire)


@pytest.mark.parametrize(
    "state, action, expected",
    [
        ("ACTIVE", "REPORT_LOST", "LOST"),
        ("FROZEN", "REPORT_LOST", "LOST"),
        ("LOST", "CANCEL_LOSS", "ACTIVE"),
        ("ACTIVE", "FREEZE", "FROZEN"),
        ("FROZEN", "UNFREEZE", "ACTIVE"),
        ("LOST", "REPLACE", "REPLACED"),
        ("ACTIVE", "CANCEL", "CANCELLED"),
        ("ACTIVE", "CANCEL_LOSS", None),
        ("LOST", "FREEZE", None),
        ("CANCELLED", "REPORT_LOST", None),
        ("REPLACED", "UNFREEZE", None),
        ("CANCELLED", "CANCEL", None),
    ],
)
def test_card_state_machine(state, action, expected):
    card = _card(cards.CardState(state))
    if expected is None:
        with pytest.raises(FailedPrecondition) as refused:
            cards.next_card_state(card, cards.CardAction(action))
        assert refused.value.reason == "CARD_STATE_CONFLICT"
    else:
        assert cards.next_card_state(card, cards.CardAction(action)) == expected


@pytest.mark.parametrize(
    "state, reason",
    [
        ("LOST", "CARD_LOST"),
        ("FROZEN", "CARD_FROZEN"),
        ("CANCELLED", "CARD_CANCELLED"),
        ("REPLACED", "CARD_REPLACED"),
    ],
)
def test_payment_refuses_unusable_cards_with_their_reason(state, reason):
    with pytest.raises(DomainError) as refused:
        cards.ensure_payable(_card(cards.CardState(state)), NOW)
    assert refused.value.reason == reason


def test_payment_refuses_an_expired_card_and_accepts_a_valid_one():
    with pytest.raises(DomainError) as refused:
        cards.ensure_payable(_card(expire=NOW), NOW)
    assert refused.value.reason == "CARD_EXPIRED"
    cards.ensure_payable(_card(expire=NOW + timedelta(seconds=1)), NOW)


def test_generated_card_numbers_carry_a_luhn_digit():
    number = cards.new_card_number()
    assert len(number) == 16 and number[0] == "8"
    assert cards.luhn_digit(number[:-1]) == number[-1]
    assert cards.luhn_digit("7992739871") == "3"  # the textbook example


def test_qr_token_roundtrip_expiry_and_tampering():
    token = qr.sign_qr_token("m_ABC", NOW + timedelta(seconds=60), "secret")
    assert qr.verify_qr_token(token, "secret", NOW) == "m_ABC"
    with pytest.raises(FailedPrecondition) as expired:
        qr.verify_qr_token(token, "secret", NOW + timedelta(seconds=60))
    assert expired.value.reason == "QR_TOKEN_EXPIRED"
    for bad in [token.replace("m_ABC", "m_ABD"), token + "x", "garbage", "a.b.c"]:
        with pytest.raises(Unauthenticated):
            qr.verify_qr_token(bad, "secret", NOW)
    with pytest.raises(Unauthenticated):
        qr.verify_qr_token(token, "another-secret", NOW)


def test_a_qr_token_good_for_longer_than_a_qr_code_is_issued_for_is_refused():
    """The issue's: a token signed with the secret, good for ten years, was accepted."""
    decade = qr.sign_qr_token("m_ABC", NOW + timedelta(days=3653), "secret")
    with pytest.raises(Unauthenticated) as refused:
        qr.verify_qr_token(decade, "secret", NOW)
    assert refused.value.reason == "QR_TOKEN_LIFETIME_EXCEEDED"
    five_minutes = qr.sign_qr_token("m_ABC", NOW + timedelta(minutes=5), "secret")
    assert qr.verify_qr_token(five_minutes, "secret", NOW) == "m_ABC"
    with pytest.raises(Unauthenticated):
        qr.verify_qr_token(five_minutes, "secret", NOW, longest=timedelta(minutes=2))


@pytest.mark.parametrize(
    "parts, expected, reason",
    [
        ((1990, 5, 17), "1990-05-17", None),
        ((0, 2, 29), "0000-02-29", None),
        ((0, 0, 0), None, None),
        ((1990, 2, 30), None, "DATE_INVALID"),
        ((2999, 1, 1), None, "DATE_OUT_OF_RANGE"),
        ((1850, 1, 1), None, "DATE_OUT_OF_RANGE"),
    ],
)
def test_partial_dates(parts, expected, reason):
    v = Violations()
    assert fields.check_date(v, *parts, "member.birthday", date(2026, 11, 22)) == expected
    assert [x.reason for x in v.items] == ([reason] if reason else [])


def test_profile_reports_every_bad_field_at_once():
    v = Violations()
    members.check_profile(
        v,
        members.ProfileInput(name=" ", phone="123", birthday=(1990, 13, 1), attributes={"nope": ("text", "x")}),
        "member.",
        {},
        date(2026, 1, 1),
    )
    assert {x.field: x.reason for x in v.items} == {
        "member.name": "NAME_REQUIRED",
        "member.phone": "PHONE_INVALID",
        "member.birthday": "DATE_INVALID",
        "member.attributes[nope]": "ATTRIBUTE_UNKNOWN",
    }


def test_a_required_attribute_must_be_given_at_registration_but_not_by_an_update_of_another_field():
    plate = {
        "car_plate": attributes.AttributeDefinition("car_plate", "车牌", attributes.AttributeType.TEXT, required=True)
    }
    v = Violations()
    members.check_profile(v, members.ProfileInput(name="车主", phone="13800000000"), "member.", plate, date(2026, 1, 1))
    assert {x.field: x.reason for x in v.items} == {"member.attributes[car_plate]": "ATTRIBUTE_REQUIRED"}
    v = Violations()
    members.check_profile(
        v, members.ProfileInput(name="车主", phone="13800000000"), "member.", plate, date(2026, 1, 1), partial={"name"}
    )
    assert not v


def test_logs_mask_phones_and_id_numbers_and_are_json(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("member")
    try:
        logging.getLogger("t").info(
            "registered 13812345678", extra={"phone": "13912345678", "id_card": "110101199003071234"}
        )
    finally:
        root.handlers[:], root.level = saved
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["msg"] == "registered 138****5678"
    assert line["phone"] == "139****5678"
    assert line["id_card"] == "110101********1234"
    assert line["service"] == "member" and line["level"] == "INFO"


def test_page_tokens_are_bound_to_their_filter():
    token = pagination.encode(["m_9"], pagination.fingerprint("a"))
    v = Violations()
    assert pagination.decode(token, pagination.fingerprint("a"), v) == ["m_9"]
    assert pagination.decode(token, pagination.fingerprint("b"), v) is None
    assert pagination.decode("%%%", pagination.fingerprint("a"), v) is None
    assert [x.reason for x in v.items] == ["PAGE_TOKEN_MISMATCH", "PAGE_TOKEN_INVALID"]


def test_page_tokens_are_bound_to_their_rpc_and_hold_what_it_writes():
    """The interceptor names the RPC being served; a token made by hand with the right
    fingerprint but a position of another shape never reaches a query."""
    rpc = pagination.serving_rpc.set("/huiyuan.points.v1.PointsService/ListHistory")
    history = pagination.fingerprint("m_1")
    pagination.serving_rpc.reset(rpc)
    rpc = pagination.serving_rpc.set("/huiyuan.member.v1.CareService/ListCareContacts")
    contacts = pagination.fingerprint("m_1")
    pagination.serving_rpc.reset(rpc)
    assert history != contacts
    v = Violations()
    for position in ([7], [{"x": 1}], ["a\x00"], ["x" * 201], ["a", "b"], []):
        assert pagination.decode(pagination.encode(position, history), history, v) is None
    assert pagination.decode(pagination.encode([2**70], history), history, v, shape=(int,)) is None
    assert pagination.decode("A" * 2_000, history, v) is None
    assert {x.reason for x in v.items} == {"PAGE_TOKEN_INVALID"} and len(v.items) == 8
    assert pagination.decode(pagination.encode([7], history), history, v, shape=(int,)) == [7]


def test_a_position_holds_a_time_exactly_and_never_one_python_cannot_make():
    """ListCards pages by issue time: the token holds it to the microsecond; one made by
    hand with a time outside the days a request may name is refused, not INTERNAL."""
    issued = datetime(2026, 11, 22, 8, 0, 0, 123457, tzinfo=UTC)
    v = Violations()
    token = pagination.encode([issued, "6200"], "f")
    assert pagination.decode(token, "f", v, shape=(datetime, str)) == [issued, "6200"]
    for made_up in ([2**62, "6200"], [-(2**62), "6200"], ["2026-11-22", "6200"], [1.5, "6200"], [True, "6200"]):
        assert pagination.decode(pagination.encode(made_up, "f"), "f", v, shape=(datetime, str)) is None
    assert [x.reason for x in v.items] == ["PAGE_TOKEN_INVALID"] * 5


def test_a_list_paged_in_memory_pages_by_its_keyset():
    """A list read whole and filtered in Python pages by the same position a query would:
    an item added before the position does not shift the next page, one after it joins."""
    items = [("b", 2), ("a", 1), ("d", 4), ("c", 3), ("e", 5)]
    page, token = pagination.page_in_memory(items, 2, None, lambda i: (i[1], i[0]), "f")
    assert page == [("a", 1), ("b", 2)]
    after = pagination.decode(token, "f", Violations(), shape=(int, str))
    page, token = pagination.page_in_memory([*items, ("a0", 0), ("f", 6)], 2, after, lambda i: (i[1], i[0]), "f")
    assert page == [("c", 3), ("d", 4)]
    page, token = pagination.page_in_memory(
        items, 2, pagination.decode(token, "f", Violations(), shape=(int, str)), lambda i: (i[1], i[0]), "f"
    )
    assert (page, token) == ([("e", 5)], "")
    newest, token = pagination.page_in_memory(items, 3, None, lambda i: (i[0],), "f", reverse=True)
    assert newest == [("e", 5), ("d", 4), ("c", 3)]
    rest, token = pagination.page_in_memory(
        items, 3, pagination.decode(token, "f", Violations()), lambda i: (i[0],), "f", reverse=True
    )
    assert (rest, token) == ([("b", 2), ("a", 1)], "")


# Tiers climbed by spend: 普通 (entry, by assignment), 银卡 at ¥1,000, 金卡 at ¥5,000 of
# spend or ¥2,000 of top-ups (充值会员), staff by hand.
ENTRY = tiers.Tier("t0", "普通会员", 1, 10000, 10000, "", 0)
SILVER = tiers.Tier("t1", "银卡", 2, 9800, 12000, "", 100_000)
GOLD = tiers.Tier("t2", "金卡", 3, 9500, 15000, "", 500_000, 200_000)
Standing = tiers.Standing
STAFF = tiers.Tier("t9", "员工", 9, 8000, 10000, "", 0)
LADDER = [ENTRY, SILVER, GOLD, STAFF]


@pytest.mark.parametrize(
    "current, spend, expected",
    [
        (ENTRY, 99_999, None),  # a fen short of 银卡
        (ENTRY, 100_000, SILVER),  # exactly the spend reaches it
        (None, 100_000, SILVER),  # a member with no tier yet climbs too
        (ENTRY, 800_000, GOLD),  # past two thresholds at once: the best, not the next
        (SILVER, 499_999, None),  # already there
        (GOLD, 100_000, None),  # spend never moves a member down
        (STAFF, 10**9, None),  # a better tier given by hand stays
    ],
)
def test_spend_lifts_a_member_to_the_best_tier_it_reaches(current, spend, expected):
    assert tiers.tier_reached(LADDER, current, Standing(spend_fen=spend)) == expected


@pytest.mark.parametrize(
    "current, standing, expected",
    [
        (ENTRY, Standing(top_up_fen=199_999), None),  # a fen short of 金卡's top-ups; 银卡 names none
        (ENTRY, Standing(top_up_fen=200_000), GOLD),  # 充值满 2000 元: straight to 金卡, past 银卡
        (ENTRY, Standing(spend_fen=100_000, top_up_fen=150_000), SILVER),  # neither measure is added to the other
        (SILVER, Standing(spend_fen=100_000, top_up_fen=200_000), GOLD),
        (STAFF, Standing(top_up_fen=10**9), None),  # a better tier given by hand stays
    ],
)
def test_top_ups_lift_a_member_to_a_tier_that_names_them(current, standing, expected):
    assert tiers.tier_reached(LADDER, current, standing) == expected


def test_a_better_tier_must_need_more_spend_than_every_worse_one():
    tiers.check_ladder(LADDER)  # tiers reached only by hand (0) are not on the ladder
    for bad in (500_000, 400_000):  # equal to 金卡's, or below it, for a better tier
        with pytest.raises(FailedPrecondition) as refused:
            tiers.check_ladder([*LADDER, tiers.Tier("t4", "钻石", 4, 9000, 20000, "", bad)])
        assert refused.value.reason == "UPGRADE_SPEND_OUT_OF_ORDER" and refused.value.metadata["tier"] == "钻石"
    tiers.check_ladder([*LADDER, tiers.Tier("t4", "钻石", 4, 9000, 20000, "", 2_000_000)])


def test_a_better_tier_must_need_more_top_ups_than_every_worse_one_that_names_them():
    for bad in (200_000, 100_000):  # 金卡 needs ¥2,000 of top-ups; 银卡 names none and does not count
        with pytest.raises(FailedPrecondition) as refused:
            tiers.check_ladder([*LADDER, tiers.Tier("t4", "钻石", 4, 9000, 20000, "", 2_000_000, bad)])
        assert refused.value.reason == "UPGRADE_TOP_UP_OUT_OF_ORDER" and refused.value.metadata["below"] == "金卡"
    tiers.check_ladder([*LADDER, tiers.Tier("t4", "钻石", 4, 9000, 20000, "", 0, 1_000_000)])  # by top-ups alone


def test_tier_spend_or_top_ups_out_of_range_is_bad_input():
    v = Violations()
    tiers.check_tier(v, "钻石", 4, 9000, 20000, "", -1)
    tiers.check_tier(v, "钻石", 4, 9000, 20000, "", 10**12 + 1)
    tiers.check_tier(v, "钻石", 4, 9000, 20000, "", 0, -1)
    assert [x.field for x in v.items] == ["tier.upgrade_spend_fen"] * 2 + ["tier.upgrade_top_up_fen"]


BY_ID = {t.tier_id: t for t in LADDER}


@pytest.mark.parametrize(
    "current, climbs, spend, expected",
    [
        ("t1", [("t0", "t1")], 100_000, "t1"),  # still paid for
        ("t1", [("t0", "t1")], 99_999, "t0"),  # a fen short: back to the tier before the climb
        ("t1", [("", "t1")], 0, ""),  # climbed from no tier: back to none
        ("t2", [("t1", "t2"), ("t0", "t1")], 300_000, "t1"),  # undoes 金卡 only
        ("t2", [("t1", "t2"), ("t0", "t1")], 0, "t0"),  # undoes both climbs
        ("t2", [("t0", "t2")], 300_000, "t1"),  # jumped past 银卡: lands where the spend still reaches
        ("t2", [("t1", "t2")], 0, "t1"),  # 银卡 given by hand, then the climb to 金卡: never below 银卡
        ("t2", [], 0, "t2"),  # assigned by hand: a return does not touch it
    ],
)
def test_a_return_undoes_the_climbs_the_spend_no_longer_pays_for(current, climbs, spend, expected):
    assert tiers.tier_after_return(BY_ID, current, climbs, Standing(spend_fen=spend)) == expected


@pytest.mark.parametrize(
    "current, climbs, standing, expected",
    [
        ("t2", [("t0", "t2")], Standing(top_up_fen=200_000), "t2"),  # the top-ups still pay for 金卡
        ("t2", [("t0", "t2")], Standing(top_up_fen=0), "t0"),  # the top-up refunded: back down
        ("t2", [("t0", "t2")], Standing(spend_fen=100_000), "t1"),  # the spend still reaches 银卡
        ("t2", [("t0", "t2")], Standing(spend_fen=600_000), "t2"),  # climbed by top-ups, kept by spend since
    ],
)
def test_a_refunded_top_up_undoes_the_climbs_nothing_pays_for_any_more(current, climbs, standing, expected):
    assert tiers.tier_after_return(BY_ID, current, climbs, standing) == expected
