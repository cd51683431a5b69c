"""Count cards (计次卡): the rules in plain Python, then CountCardService through its
generated stub on SQLite and PostgreSQL."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, strategies as st
from sqlalchemy import func, select, update

from huiyuan.common.v1 import actor_pb2
from huiyuan.database.engines import make_sync_engine
from huiyuan.runtime.business_time import day_start
from huiyuan.runtime.errors import FailedPrecondition
from huiyuan.runtime.ids import new_id
from huiyuan.wallet.v1 import count_card_pb2 as pb, count_card_pb2_grpc, wallet_pb2
from services.wallet.domain import count_cards as rules
from services.wallet.domain.top_ups import Tender
from services.wallet.storage.tables import count_card_entries, count_cards
from tests.support import refusal, rid

SH, HZ, GZ = "hq/east/sh-001", "hq/east/hz-001", "hq/south/gz-001"
CASHIER = actor_pb2.Actor(operator_id="cashier-07", org_path=f"{SH}/pos-1")
EAST = actor_pb2.Actor(operator_id="east-ops", org_path="hq/east")
NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


# ---------------------------------------------------------------- the rules


def a_card(price=1000, uses=3, skus=(), org="hq/east", valid_days=0, now=NOW) -> rules.Card:
    plan = rules.Plan("ccp_x", "理发3次卡", org, uses, price, valid_days, skus)
    return rules.sell(
        plan, card_id="cc_x", member_id="m_x", store_path=SH, tender=Tender.CASH, tender_reference="", now=now
    )


def test_each_use_earns_its_share_and_the_shares_add_up_to_the_price():
    card = a_card(price=1000, uses=3)
    assert [rules.use(card, uses=1, sku="", store_path=SH, now=NOW) for _ in range(3)] == [333, 333, 334]
    assert (card.uses_left, card.value_left, card.state(NOW)) == (0, 0, rules.CardState.USED_UP)
    card = a_card(price=1000, uses=3)
    assert rules.use(card, uses=2, sku="", store_path=HZ, now=NOW) == 666  # two at once: the same as one by one
    assert card.value_left == 334


def test_an_undone_use_gives_back_what_the_count_says_and_a_refund_returns_what_is_left():
    card = a_card(price=80000, uses=10)  # 游泳10次卡 ¥800
    rules.use(card, uses=3, sku="", store_path=SH, now=NOW)
    assert rules.undo_use(card, 1) == 8000
    assert (card.uses_left, card.value_left) == (8, 64000)
    assert rules.refund(card, NOW) == 64000
    assert (card.uses_left, card.value_left, card.state(NOW)) == (0, 0, rules.CardState.REFUNDED)
    with pytest.raises(FailedPrecondition) as refused:
        rules.use(card, uses=1, sku="", store_path=SH, now=NOW)
    assert refused.value.reason == "COUNT_CARD_REFUNDED"


@given(price=st.integers(1, 10**7), uses=st.integers(1, 30), steps=st.lists(st.integers(-3, 3), max_size=40))
def test_the_value_left_is_always_the_price_less_what_the_uses_taken_earned(price, uses, steps):
    """Uses (> 0) and undos (< 0) in any order: no fen made or lost, none negative."""
    card, moved, taken = a_card(price=price, uses=uses), price, []
    for step in steps:
        if step > 0 and step <= card.uses_left:
            value = rules.use(card, uses=step, sku="", store_path=SH, now=NOW)
            taken.append(step)
            moved -= value
        elif step < 0 and taken:
            moved += rules.undo_use(card, taken.pop())
        assert moved == card.value_left == price - rules.earned(price, uses, card.used) >= 0
    if card.value_left:
        moved -= rules.refund(card, NOW)
    assert moved == 0


def test_a_card_is_usable_until_the_end_of_its_last_day_in_chain_time():
    late = datetime(2026, 11, 23, 15, 59, tzinfo=UTC)  # 23:59 on the 23rd in Shanghai
    card = a_card(valid_days=30, now=late)
    assert card.expire_time == day_start(datetime(2026, 12, 24).date())  # usable all of 23 December
    last_moment = card.expire_time - timedelta(microseconds=1)
    assert card.usable_at(SH, last_moment) and not card.usable_at(SH, card.expire_time)
    assert card.state(card.expire_time) == rules.CardState.EXPIRED
    with pytest.raises(FailedPrecondition) as refused:
        rules.use(card, uses=1, sku="", store_path=SH, now=card.expire_time)
    assert refused.value.reason == "COUNT_CARD_EXPIRED"
    assert a_card(valid_days=0).expire_time is None


@pytest.mark.parametrize(
    "store, sku, uses, reason",
    [
        (GZ, "", 1, "COUNT_CARD_NOT_USABLE_HERE"),  # an east card in the south
        (SH, "massage", 1, "SKU_NOT_COVERED"),
        (SH, "", 1, "SKU_NOT_COVERED"),  # the card names its services: a use names one
        (SH, "swim", 4, "COUNT_CARD_USES_SHORT"),
    ],
)
def test_a_use_the_card_does_not_allow_is_refused_and_takes_nothing(store, sku, uses, reason):
    card = a_card(uses=3, skus=("swim", "sauna"))
    with pytest.raises(FailedPrecondition) as refused:
        rules.use(card, uses=uses, sku=sku, store_path=store, now=NOW)
    assert refused.value.reason == reason and card.uses_left == 3


# ---------------------------------------------------------------- the service


@pytest.fixture(scope="module")
def cards(wallet_service):
    stub = count_card_pb2_grpc.CountCardServiceStub(wallet_service.channel)
    stub.url = wallet_service.settings.database_url
    return stub


def create_plan(cards, name="游泳10次卡", uses=10, price=800_00, org="hq/east", actor=EAST, **fields):
    return cards.CreateCountCardPlan(
        pb.CreateCountCardPlanRequest(
            request_id=rid(),
            actor=actor,
            plan=pb.CountCardPlan(name=name, org_path=org, uses=uses, price_fen=price, **fields),
        )
    ).plan


def sell(cards, plan_id, member_id=None, store=SH, **kw):
    return cards.SellCountCard(
        pb.SellCountCardRequest(
            request_id=kw.pop("request_id", rid()),
            member_id=member_id or new_id("m"),
            plan_id=plan_id,
            store_path=store,
            tender=kw.pop("tender", wallet_pb2.TENDER_WECHAT_PAY),
            actor=CASHIER,
            **kw,
        )
    ).card


def use(cards, card_id, uses=1, sku="", store=SH, request_id=None):
    return cards.UseCountCard(
        pb.UseCountCardRequest(
            request_id=request_id or rid(), card_id=card_id, uses=uses, sku=sku, store_path=store, actor=CASHIER
        )
    )


def assert_cards_balance(url: str) -> None:
    """Every card's uses and value left are the sums of its entries, never below zero."""
    engine = make_sync_engine(url, "wallet")
    e = count_card_entries.c
    with engine.connect() as db:
        sums = {
            r.card_id: (r.uses, r.value)
            for r in db.execute(
                select(
                    e.card_id, func.sum(e.uses_delta).label("uses"), func.sum(e.value_delta_fen).label("value")
                ).group_by(e.card_id)
            )
        }
        rows = db.execute(select(count_cards)).all()
    engine.dispose()
    for row in rows:
        uses, value = sums[row.card_id]
        card = rules.Card(
            row.card_id,
            row.member_id,
            row.plan_id,
            row.name,
            row.org_path,
            (),
            row.uses_total,
            row.uses_left,
            row.price_fen,
            row.sold_store_path,
            Tender(row.tender),
            "",
            None,
            row.create_time,
            row.refund_time,
        )
        assert (uses, value) == (card.uses_left, card.value_left) and value >= 0, row


def test_a_card_sold_at_one_store_is_punched_at_another_and_refunded_where_it_was_sold(cards):
    plan = create_plan(cards, valid_days=365, skus=["swim"])
    assert plan.plan_id in [
        p.plan_id for p in cards.ListCountCardPlans(pb.ListCountCardPlansRequest(store_path=SH)).plans
    ]
    assert plan.plan_id not in [
        p.plan_id for p in cards.ListCountCardPlans(pb.ListCountCardPlansRequest(store_path=GZ)).plans
    ]
    card = sell(cards, plan.plan_id, tender_reference="WX-1001")
    assert (card.uses_left, card.value_left_fen, card.state, card.sold_store_path) == (
        10,
        800_00,
        pb.COUNT_CARD_STATE_ACTIVE,
        SH,
    )
    punched = use(cards, card.card_id, uses=2, sku="swim", store=HZ)  # cross-store, in the same region
    assert (punched.use.uses_delta, punched.use.value_delta_fen, punched.use.store_path) == (-2, -160_00, HZ)
    assert (punched.card.uses_left, punched.card.value_left_fen) == (8, 640_00)
    listed = cards.ListCountCards(pb.ListCountCardsRequest(member_id=card.member_id, usable_at_store_path=HZ)).cards
    assert [c.card_id for c in listed] == [card.card_id]
    assert not cards.ListCountCards(pb.ListCountCardsRequest(member_id=card.member_id, usable_at_store_path=GZ)).cards
    refund = cards.RefundCountCard(
        pb.RefundCountCardRequest(request_id=rid(), card_id=card.card_id, reason="搬家", actor=CASHIER)
    )
    assert (refund.refund_fen, refund.tender, refund.tender_reference) == (
        640_00,
        wallet_pb2.TENDER_WECHAT_PAY,
        "WX-1001",
    )
    assert (refund.card.state, refund.card.uses_left, refund.card.value_left_fen) == (
        pb.COUNT_CARD_STATE_REFUNDED,
        0,
        0,
    )
    history = cards.ListCountCardEntries(pb.ListCountCardEntriesRequest(card_id=card.card_id)).entries
    assert [
        (e.kind, e.uses_delta, e.value_delta_fen, e.uses_left_after, e.value_left_after_fen, e.store_path)
        for e in history
    ] == [
        (pb.COUNT_CARD_ENTRY_KIND_REFUND, -8, -640_00, 0, 0, SH),
        (pb.COUNT_CARD_ENTRY_KIND_USE, -2, -160_00, 8, 640_00, HZ),
        (pb.COUNT_CARD_ENTRY_KIND_SALE, 10, 800_00, 10, 800_00, SH),
    ]
    assert_cards_balance(cards.url)


def test_a_use_punched_by_mistake_is_undone_once_at_its_store(cards):
    plan = create_plan(cards, name="理发3次卡", uses=3, price=100_00)
    card = sell(cards, plan.plan_id)
    first = use(cards, card.card_id).use
    use(cards, card.card_id, store=HZ)
    undo = cards.UndoCountCardUse(
        pb.UndoCountCardUseRequest(request_id=rid(), use_id=first.entry_id, reason="多扣一次", actor=CASHIER)
    )
    # The count says what comes back: 2 uses had earned 66.66, 1 use earns 33.33.
    assert (undo.undo.uses_delta, undo.undo.value_delta_fen, undo.undo.store_path) == (1, 33_33, SH)
    assert (undo.card.uses_left, undo.card.value_left_fen) == (2, 66_67)
    assert (
        cards.GetCountCardUse(pb.GetCountCardUseRequest(use_id=first.entry_id)).use.undone_by_entry_id
        == undo.undo.entry_id
    )
    code, reason, _ = refusal(
        cards.UndoCountCardUse,
        pb.UndoCountCardUseRequest(request_id=rid(), use_id=first.entry_id, reason="again", actor=CASHIER),
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "USE_ALREADY_UNDONE")
    code, reason, _ = refusal(cards.GetCountCardUse, pb.GetCountCardUseRequest(use_id=undo.undo.entry_id))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "COUNT_CARD_USE_NOT_FOUND")  # an undo is not a use
    use(cards, card.card_id)
    use(cards, card.card_id)
    assert cards.GetCountCard(pb.GetCountCardRequest(card_id=card.card_id)).card.state == pb.COUNT_CARD_STATE_USED_UP
    code, reason, _ = refusal(
        cards.RefundCountCard,
        pb.RefundCountCardRequest(request_id=rid(), card_id=card.card_id, reason="r", actor=CASHIER),
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NOTHING_TO_REFUND")
    assert_cards_balance(cards.url)


def test_a_replayed_use_returns_the_same_answer_and_takes_one_use(cards):
    card = sell(cards, create_plan(cards, uses=5, price=500_00).plan_id)
    request_id = rid()
    first, again = use(cards, card.card_id, request_id=request_id), use(cards, card.card_id, request_id=request_id)
    assert first == again and again.card.uses_left == 4
    code, reason, _ = refusal(use, cards, card.card_id, uses=2, request_id=request_id)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REQUEST_ID_REUSED")
    assert cards.GetCountCard(pb.GetCountCardRequest(card_id=card.card_id)).card.uses_left == 4


def test_an_expired_card_takes_no_use_but_is_refunded_what_is_left(cards):
    card = sell(cards, create_plan(cards, uses=4, price=400_00, valid_days=30).plan_id)
    use(cards, card.card_id)
    engine = make_sync_engine(cards.url, "wallet")  # thirty-one days on: the card's end moved into the past
    with engine.begin() as db:
        db.execute(
            update(count_cards)
            .where(count_cards.c.card_id == card.card_id)
            .values(expire_time=datetime.now(UTC) - timedelta(seconds=1))
        )
    engine.dispose()
    assert cards.GetCountCard(pb.GetCountCardRequest(card_id=card.card_id)).card.state == pb.COUNT_CARD_STATE_EXPIRED
    code, reason, _ = refusal(use, cards, card.card_id)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "COUNT_CARD_EXPIRED")
    assert not cards.ListCountCards(pb.ListCountCardsRequest(member_id=card.member_id, usable_at_store_path=SH)).cards
    refund = cards.RefundCountCard(
        pb.RefundCountCardRequest(request_id=rid(), card_id=card.card_id, reason="过期退卡", actor=CASHIER)
    )
    assert refund.refund_fen == 300_00
    assert_cards_balance(cards.url)


def test_a_plan_ended_is_sold_no_more_but_its_cards_stay_usable(cards):
    plan = create_plan(cards, name="洗车12次卡", uses=12, price=360_00)
    card = sell(cards, plan.plan_id)
    ended = cards.EndCountCardPlan(pb.EndCountCardPlanRequest(request_id=rid(), plan_id=plan.plan_id, actor=EAST)).plan
    assert ended.ended_by == "east-ops" and ended.HasField("end_time")
    code, reason, _ = refusal(sell, cards, plan.plan_id)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PLAN_NOT_ON_SALE")
    assert use(cards, card.card_id).card.uses_left == 11
    on_line = cards.ListCountCardPlans(pb.ListCountCardPlansRequest(org_path="hq/east")).plans
    assert plan.plan_id not in [p.plan_id for p in on_line]
    assert plan.plan_id in [
        p.plan_id
        for p in cards.ListCountCardPlans(pb.ListCountCardPlansRequest(org_path="hq/east", show_ended=True)).plans
    ]


def test_bad_input_is_refused_with_its_field_and_writes_nothing(cards):
    def plan_refused(**fields):
        values = dict(name="卡", org_path="hq/east", uses=10, price_fen=100_00)
        values.update(fields)
        return refusal(
            cards.CreateCountCardPlan,
            pb.CreateCountCardPlanRequest(request_id=rid(), actor=EAST, plan=pb.CountCardPlan(**values)),
        )

    assert plan_refused(uses=0)[2] == {"plan.uses": "USES_INVALID"}
    assert plan_refused(price_fen=0)[2] == {"plan.price_fen": "PRICE_INVALID"}
    assert plan_refused(valid_days=-1)[2] == {"plan.valid_days": "VALID_DAYS_INVALID"}
    assert plan_refused(skus=["swim", "swim"])[2] == {"plan.skus": "SKUS_REPEATED"}
    assert plan_refused(name=" ")[2] == {"plan.name": "NAME_REQUIRED"}
    assert plan_refused(start_time=Timestamp(seconds=2_000_000_000), end_time=Timestamp(seconds=1_900_000_000))[2] == {
        "plan.end_time": "DATES_REVERSED"
    }
    code, reason, _ = plan_refused(org_path="hq/south")  # a region configures its own scope
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
    plan = create_plan(cards, uses=2, price=50_00)
    code, reason, _ = refusal(sell, cards, plan.plan_id, store=GZ)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PLAN_NOT_SOLD_HERE")
    code, _, fields = refusal(sell, cards, plan.plan_id, tender=wallet_pb2.TENDER_UNSPECIFIED)
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, {"tender": "TENDER_INVALID"})
    code, reason, _ = refusal(sell, cards, "ccp_01JAAAAAAAAAAAAAAAAAAAAAAA")
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "COUNT_CARD_PLAN_NOT_FOUND")
    card = sell(cards, plan.plan_id)
    assert refusal(use, cards, card.card_id, uses=-1)[2] == {"uses": "USES_INVALID"}
    assert refusal(use, cards, "cc_01JAAAAAAAAAAAAAAAAAAAAAAA")[1] == "COUNT_CARD_NOT_FOUND"
    assert refusal(use, cards, card.card_id, store=GZ)[1] == "COUNT_CARD_NOT_USABLE_HERE"
    assert refusal(use, cards, card.card_id, uses=3)[1] == "COUNT_CARD_USES_SHORT"
    assert refusal(
        cards.UndoCountCardUse, pb.UndoCountCardUseRequest(request_id=rid(), use_id=new_id("cce"), actor=CASHIER)
    )[2] == {"reason": "REASON_REQUIRED"}
    assert cards.GetCountCard(pb.GetCountCardRequest(card_id=card.card_id)).card.uses_left == 2
    assert_cards_balance(cards.url)


def test_concurrent_uses_of_one_card_take_exactly_the_uses_it_has(cards, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("concurrency is settled by PostgreSQL's row locks; SQLite has one writer")
    card = sell(cards, create_plan(cards, name="美容5次卡", uses=5, price=1000_00).plan_id)

    def attempt(_):
        try:
            return use(cards, card.card_id).use.value_delta_fen
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
            return None

    with ThreadPoolExecutor(20) as pool:
        taken = [v for v in pool.map(attempt, range(20)) if v is not None]
    assert len(taken) == 5 and sum(taken) == -1000_00
    assert cards.GetCountCard(pb.GetCountCardRequest(card_id=card.card_id)).card.state == pb.COUNT_CARD_STATE_USED_UP
    assert_cards_balance(cards.url)


def test_a_card_used_at_another_store_settles_between_them_and_its_money_is_in_the_tills_day(cards, wallet_service):
    from google.type import date_pb2

    from huiyuan.runtime.business_time import local
    from huiyuan.wallet.v1 import wallet_pb2_grpc

    wallet = wallet_pb2_grpc.WalletServiceStub(wallet_service.channel)
    cd, cq = "hq/west/cd-001", "hq/west/cq-001"  # stores no other test here sells or serves at
    hq = actor_pb2.Actor(operator_id="hq-ops", org_path="hq")
    plan = create_plan(cards, name="推拿3次卡", uses=3, price=300_00, org="hq/west", actor=hq)
    kept = sell(cards, plan.plan_id, store=cd, tender=wallet_pb2.TENDER_CASH)
    refunded = sell(cards, plan.plan_id, store=cd, tender=wallet_pb2.TENDER_ALIPAY)
    first = use(cards, kept.card_id, uses=2, store=cq).use
    cards.UndoCountCardUse(pb.UndoCountCardUseRequest(request_id=rid(), use_id=first.entry_id, reason="多扣", actor=hq))
    use(cards, kept.card_id, store=cq)
    use(cards, refunded.card_id, store=cd)  # at the store that sold it: nothing to settle
    cards.RefundCountCard(pb.RefundCountCardRequest(request_id=rid(), card_id=refunded.card_id, reason="r", actor=hq))
    code, _, fields = refusal(sell, cards, plan.plan_id, store=cd, tender=wallet_pb2.TENDER_ONLINE)
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, {"tender": "TENDER_INVALID"})

    today = local(datetime.now(UTC)).date()
    day = date_pb2.Date(year=today.year, month=today.month, day=today.day)
    positions = {
        p.store_path: p
        for p in wallet.GetSettlement(
            wallet_pb2.GetSettlementRequest(org_path="hq/west", start_date=day, end_date=day)
        ).positions
    }
    assert (positions[cd].count_card_sold_here_used_elsewhere_fen, positions[cd].net_fen) == (100_00, -100_00)
    assert (positions[cq].count_card_sold_elsewhere_used_here_fen, positions[cq].net_fen) == (100_00, 100_00)

    selling = wallet.GetStoreActivity(wallet_pb2.GetStoreActivityRequest(store_path=cd, date=day))
    assert (selling.count_card_sold_fen, selling.count_card_used_fen) == (600_00 - 200_00, 100_00)
    assert [(t.tender, t.count_card_fen, t.count_card_refunded_fen) for t in selling.top_up_takings] == [
        (wallet_pb2.TENDER_CASH, 300_00, 0),
        (wallet_pb2.TENDER_ALIPAY, 300_00, 200_00),
    ]
    serving = wallet.GetStoreActivity(wallet_pb2.GetStoreActivityRequest(store_path=cq, date=day))
    assert (serving.count_card_sold_fen, serving.count_card_used_fen, list(serving.top_up_takings)) == (0, 100_00, [])
    assert_cards_balance(cards.url)
