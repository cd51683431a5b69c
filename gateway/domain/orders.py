"""An order's and a refund's states, and the rules of returning its lines.

An order is PENDING while its checkout saga runs, then PAID or REFUSED, or
NEEDS_ATTENTION when a service refused a step after the pivot (an operator settles it);
its refunds take a PAID order to PARTLY_REFUNDED and REFUNDED. A refund is PENDING, then
DONE, or NEEDS_ATTENTION."""

from collections.abc import Iterable

from huiyuan.runtime.errors import NotFound, Unavailable, Violations

PENDING, PAID, REFUSED, NEEDS_ATTENTION = "PENDING", "PAID", "REFUSED", "NEEDS_ATTENTION"
PARTLY_REFUNDED, REFUNDED = "PARTLY_REFUNDED", "REFUNDED"
SOLD = [PAID, PARTLY_REFUNDED, REFUNDED]
DONE = "DONE"  # a refund's own states: PENDING, DONE, NEEDS_ATTENTION


def units_returned(refunds_lines: Iterable[dict[str, int]]) -> dict[str, int]:
    """Units returned by line id, over refunds whose lines each map line id -> units."""
    total: dict[str, int] = {}
    for lines in refunds_lines:
        for line_id, quantity in lines.items():
            total[line_id] = total.get(line_id, 0) + quantity
    return total


def state_after(bought: dict[str, int], *refunds_lines: dict[str, int]) -> str:
    """REFUNDED once every unit bought came back, else PARTLY_REFUNDED."""
    returned = units_returned(refunds_lines)
    return REFUNDED if all(returned.get(i, 0) >= q for i, q in bought.items()) else PARTLY_REFUNDED


def check_returnable(lines: dict[str, int], bought: dict[str, int], refunded: dict[str, int]) -> None:
    """Every returned line is on the order, with that many units not yet returned."""
    v = Violations()
    for i, (line_id, quantity) in enumerate(lines.items()):
        if v.check(
            line_id in bought,
            f"lines[{i}].line_id",
            "LINE_NOT_IN_ORDER",
            f"the order has no line {line_id}; its lines are {', '.join(bought)}",
        ):
            left = bought[line_id] - refunded.get(line_id, 0)
            v.check(
                quantity <= left,
                f"lines[{i}].quantity",
                "REFUND_EXCEEDS_ORDER",
                f"line {line_id} has {left} left to return",
            )
    v.raise_if_any()


def not_in_scope(order_id: str) -> NotFound:
    # An order of another store is "not found" too: scope never tells what exists elsewhere.
    return NotFound("ORDER_NOT_FOUND", "No such order in your scope.", "您的范围内没有此订单。", order_id=order_id)


def not_finished(order_id: str, cause: str) -> Unavailable:
    """What the terminal hears while money may have moved and the order is not done:
    never a refusal, so the cashier does not take another payment."""
    return Unavailable(
        "ORDER_NOT_FINISHED",
        f"Order {order_id} is not finished yet ({cause}): do not take another payment; retry with the same request_id.",
        f"订单 {order_id} 尚未完成：请勿重复收款，请稍后用同一请求重试。",
        order_id=order_id,
        cause=cause,
    )


def refund_not_finished(order_id: str, cause: str, operator: bool = False) -> Unavailable:
    """What the terminal hears while money may have gone back and the refund is not done:
    a service did not answer or failed (retry), or refused a step (an operator settles
    it); never a refusal, so nobody refunds by other means."""
    then = (
        ("An operator has been told.", "已通知运维。")
        if operator
        else ("Retry with the same request_id.", "请稍后用同一请求重试。")
    )
    return Unavailable(
        "REFUND_NOT_FINISHED",
        f"The refund of order {order_id} is not finished ({cause}); money may "
        f"already have gone back: do not refund by other means. {then[0]}",
        f"订单 {order_id} 的退款尚未完成，款项可能已退回：请勿以其他方式退款，{then[1]}",
        order_id=order_id,
        cause=cause,
    )
