"""Holds and captures that arrive together run as one batch (database/batching.py): each
against what the ones before it left, each with its own outcome, stored for its replay.
The batches are driven through the service's own batch functions, on its database, so
that what goes together is certain; concurrency through gRPC is test_wallet_service's."""

import pytest
from google.protobuf.duration_pb2 import Duration
from sqlalchemy.exc import IntegrityError

from huiyuan.database.idempotency import Idempotency
from huiyuan.runtime.errors import DomainError
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.serving import serving_rpc
from huiyuan.wallet.v1 import wallet_pb2 as pb
from services.wallet.domain.holds import CaptureAsk, HoldAsk
from services.wallet.domain.spend_policy import SpendPolicy
from services.wallet.servicers.wallet import WalletServicer
from services.wallet.storage.tables import idempotency_keys
from tests.invariants import assert_books_balance
from tests.support import rid
from tests.test_wallet_service import BJ, balance, hold, top_up, wallet  # noqa: F401 - the fixture


@pytest.fixture(scope="module")
def servicer(wallet_service):
    ctx = wallet_service.app.context
    return WalletServicer(ctx, Idempotency(ctx.database, idempotency_keys, "wallet"), SpendPolicy.PROPORTIONAL)


async def _serving(rpc, coroutine):
    """The batch function, as the server runs it: within the RPC its idempotency keys record."""
    serving_rpc.set(f"/huiyuan.wallet.v1.WalletService/{rpc}")
    return await coroutine


def _hold_item(member_id, amount, request_id=None, hold_id=None):
    request = pb.HoldRequest(
        request_id=request_id or rid(),
        member_id=member_id,
        amount_fen=amount,
        ttl=Duration(seconds=60),
        store_path=BJ,
        order_id="o-1",
    )
    return request, HoldAsk(hold_id or new_id("h"), member_id, amount, request.ttl.ToTimedelta(), BJ, "o-1")


def _capture_item(hold_id, amount, request_id=None):
    request = pb.CaptureRequest(request_id=request_id or rid(), hold_id=hold_id, amount_fen=amount)
    return request, CaptureAsk(hold_id, amount, "")


def _reason(outcome) -> str:
    assert isinstance(outcome, DomainError), outcome
    return outcome.reason


def test_holds_placed_together_each_take_what_the_ones_before_left(wallet, wallet_service, servicer):
    member, other = new_id("m"), new_id("m")
    top_up(wallet, member, 10_00)
    top_up(wallet, other, 3_00)
    earlier = _hold_item(member, 1_00)
    first_alone = wallet_service.run(_serving("Hold", servicer._place_holds([earlier])))[0]
    refused = _hold_item(member, 6_00)
    items = [
        _hold_item(member, 4_00),
        _hold_item(other, 3_00),
        refused,
        _hold_item(member, 5_00),
        earlier,
        (pb.HoldRequest(request_id=earlier[0].request_id, member_id=member, amount_fen=2_00), earlier[1]),
    ]
    outcomes = wallet_service.run(_serving("Hold", servicer._place_holds(items)))
    assert [o.hold.amount_fen for o in outcomes[:2]] == [4_00, 3_00]
    assert _reason(outcomes[2]) == "INSUFFICIENT_BALANCE"  # 10 - 1 - 4 leaves 5: not for 6, but for the next
    assert outcomes[3].hold.amount_fen == 5_00
    assert outcomes[4] == first_alone  # a replay answers as the first did and places nothing
    assert _reason(outcomes[5]) == "REQUEST_ID_REUSED"
    assert (balance(wallet, member).held_fen, balance(wallet, other).available_fen) == (10_00, 0)
    top_up(wallet, member, 10_00)
    again = wallet_service.run(_serving("Hold", servicer._place_holds([refused])))[0]
    assert _reason(again) == "INSUFFICIENT_BALANCE"  # refused in a batch stays refused
    assert balance(wallet, member).held_fen == 10_00
    assert_books_balance(wallet.url)


def test_captures_together_post_in_order_and_refuse_what_cannot_be_captured(wallet, wallet_service, servicer):
    member = new_id("m")
    top_up(wallet, member, 10_00)
    a, b, c = (hold(wallet, member, amount) for amount in (3_00, 2_00, 1_00))
    twice = _capture_item(a.hold_id, 3_00)
    items = [
        twice,
        _capture_item(b.hold_id, 1_50),
        _capture_item(a.hold_id, 1_00),
        _capture_item("h_nope", 1_00),
        _capture_item(c.hold_id, 2_00),
        twice,
    ]
    outcomes = wallet_service.run(_serving("Capture", servicer._capture_holds(items)))
    assert [o.balance.available_fen for o in outcomes[:2]] == [4_00, 4_50]  # each as it left the accounts
    assert outcomes[1].hold.captured_fen == 1_50
    assert [_reason(o) for o in outcomes[2:4]] == ["HOLD_ALREADY_CAPTURED", "HOLD_NOT_FOUND"]
    assert [v.reason for v in outcomes[4].violations] == ["CAPTURE_EXCEEDS_HOLD"]
    assert outcomes[5] == outcomes[0]
    after = balance(wallet, member)
    assert (after.principal_fen, after.held_fen, after.available_fen) == (5_50, 1_00, 4_50)
    assert_books_balance(wallet.url)


def test_a_batch_that_cannot_commit_runs_each_call_alone(wallet, wallet_service, servicer):
    # Two asks for one hold id: the batch's insert fails on the key and rolls back
    # whole; alone, the first is placed and the second fails by itself.
    member = new_id("m")
    top_up(wallet, member, 10_00)
    hold_id = new_id("h")
    first, second = _hold_item(member, 2_00, hold_id=hold_id), _hold_item(member, 3_00, hold_id=hold_id)
    outcomes = wallet_service.run(_serving("Hold", servicer._place_holds([first, second])))
    assert outcomes[0].hold.hold_id == hold_id and outcomes[0].hold.amount_fen == 2_00
    assert isinstance(outcomes[1], IntegrityError)
    assert balance(wallet, member).held_fen == 2_00
    assert_books_balance(wallet.url)


def test_a_lapsed_hold_ended_for_a_refused_ask_stays_ended_and_released(wallet, wallet_service, servicer):
    # The refused ask's neighbour commits, and with it the lapsed hold that the refused
    # ask ended: the member's held amount must no longer count it.
    member, other = new_id("m"), new_id("m")
    top_up(wallet, member, 10_00)
    top_up(wallet, other, 10_00)
    request, ask = _hold_item(member, 8_00)
    lapsed = (request, HoldAsk(ask.hold_id, member, 8_00, -ask.ttl, BJ, "o-1"))  # due a minute ago
    wallet_service.run(_serving("Hold", servicer._place_holds([lapsed])))
    both = [_hold_item(member, 11_00), _hold_item(other, 1_00)]
    outcomes = wallet_service.run(_serving("Hold", servicer._place_holds(both)))
    assert _reason(outcomes[0]) == "INSUFFICIENT_BALANCE" and outcomes[1].hold.amount_fen == 1_00
    assert balance(wallet, member).held_fen == 0
    assert_books_balance(wallet.url)
