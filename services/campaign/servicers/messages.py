"""The translation between campaign.v1's messages and the domain's objects, and the
checks of an order's shape that Quote, Simulate and the reservations share."""

from huiyuan.campaign.v1 import campaign_pb2 as pb
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.convert import calendar_date, enum_name, enum_value, from_timestamp, timestamp
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.requests import check_order_lines, check_store_path
from services.campaign.domain import pricing
from services.campaign.domain.campaigns import Campaign, Kind, Status, Step
from services.campaign.domain.coupons import CouponKind, MemberCoupon, Template, terms
from services.campaign.domain.rates import BP


def campaign(m: pb.Campaign) -> Campaign:
    kind = Kind(enum_name(pb.CampaignKind, "CAMPAIGN_KIND", m.kind) or "TIER_DISCOUNT")
    return Campaign(
        "",
        m.name.strip(),
        kind,
        m.org_path,
        from_timestamp(m.start_time) if m.HasField("start_time") else None,
        from_timestamp(m.end_time) if m.HasField("end_time") else None,
        list(m.tier_ids),
        list(m.tags),
        m.new_member_within.ToTimedelta() if m.HasField("new_member_within") else None,
        m.points_multiplier_bp if kind == Kind.POINTS_MULTIPLIER else m.rate_bp,
        list(m.categories),
        dict(m.sku_prices_fen),
        [Step(s.threshold_fen, s.reduction_fen, s.rate_bp) for s in m.steps],
        list(m.weekdays),
        list(m.month_days),
        m.exclusive_group,
        m.on_original_price,
        m.budget_fen,
        m.per_member_limit,
        m.per_store_daily_limit,
        m.coupon_template_id,
    )


def campaign_message(c: Campaign, status: Status, campaign_id: str = "") -> pb.Campaign:
    message = pb.Campaign(
        campaign_id=campaign_id or c.campaign_id,
        name=c.name,
        kind=enum_value(pb.CampaignKind, "CAMPAIGN_KIND", c.kind.value),
        org_path=c.org_path,
        status=enum_value(pb.CampaignStatus, "CAMPAIGN_STATUS", status.value),
        start_time=timestamp(c.start_time),
        end_time=timestamp(c.end_time),
        tier_ids=c.tier_ids,
        tags=c.tags,
        categories=c.categories,
        sku_prices_fen=c.sku_prices_fen,
        weekdays=c.weekdays,
        month_days=c.month_days,
        steps=[
            pb.ThresholdStep(threshold_fen=s.threshold_fen, reduction_fen=s.reduction_fen, rate_bp=s.rate_bp)
            for s in c.steps
        ],
        exclusive_group=c.exclusive_group,
        on_original_price=c.on_original_price,
        budget_fen=c.budget_fen,
        per_member_limit=c.per_member_limit,
        per_store_daily_limit=c.per_store_daily_limit,
        coupon_template_id=c.coupon_template_id,
    )
    if c.kind == Kind.POINTS_MULTIPLIER:
        message.points_multiplier_bp = c.rate_bp
    else:
        message.rate_bp = c.rate_bp
    if c.new_member_within is not None:
        message.new_member_within.FromTimedelta(c.new_member_within)
    return message


def template(m: pb.CouponTemplate, kind: str | None) -> Template:
    return Template(
        "",
        m.name.strip(),
        CouponKind(kind or "FIXED"),
        m.amount_fen,
        m.rate_bp,
        m.cap_fen,
        m.threshold_fen,
        list(m.categories),
        m.org_path,
        from_timestamp(m.valid_from_time) if m.HasField("valid_from_time") else None,
        from_timestamp(m.valid_until_time) if m.HasField("valid_until_time") else None,
        m.valid_days,
        m.campaign_id,
    )


def template_message(t: Template) -> pb.CouponTemplate:
    return pb.CouponTemplate(
        template_id=t.template_id,
        name=t.name,
        kind=enum_value(pb.CouponKind, "COUPON_KIND", t.kind.value),
        amount_fen=t.amount_fen,
        rate_bp=t.rate_bp,
        cap_fen=t.cap_fen,
        threshold_fen=t.threshold_fen,
        categories=t.categories,
        org_path=t.org_path,
        valid_from_time=timestamp(t.valid_from),
        valid_until_time=timestamp(t.valid_until),
        valid_days=t.valid_days,
        campaign_id=t.campaign_id,
    )


def order(v: Violations, request: pb.QuoteRequest, p: str = ""):
    """The order of a quote, checked: (member, lines, at)."""
    check_store_path(v, request.store_path, f"{p}store_path")
    check_order_lines(v, request.lines, f"{p}lines")
    m = request.member
    v.check(
        0 <= m.tier_price_rate_bp <= BP,
        f"{p}member.tier_price_rate_bp",
        "RATE_INVALID",
        "tier_price_rate_bp is 0 to 10000",
    )
    birthday = None
    if m.HasField("birthday"):  # a birthday without a year (0000-MM-DD) still has its day
        birthday = calendar_date(m.birthday) or (
            calendar_date(type(m.birthday)(year=2000, month=m.birthday.month, day=m.birthday.day))
        )
        v.check(birthday is not None, f"{p}member.birthday", "DATE_INVALID", "birthday must be a calendar day")
    member = pricing.Member(
        m.member_id,
        m.tier_id,
        m.tier_price_rate_bp or BP,
        list(m.tags),
        from_timestamp(m.register_time) if m.HasField("register_time") else None,
        birthday,
    )
    lines = [pricing.Line(x.line_id, x.sku, x.category, x.quantity, x.unit_price_fen) for x in request.lines]
    at = from_timestamp(request.at_time) if request.HasField("at_time") else utcnow()
    return member, lines, at


def quote_message(q: pricing.Quote) -> pb.QuoteResponse:
    # Filled in place with add(): half the CPU of building each message and copying
    # it into its parent, on the path of every quote.
    message = pb.QuoteResponse(
        list_total_fen=q.list_total_fen,
        discount_total_fen=q.discount_total_fen,
        payable_fen=q.payable_fen,
        points_multiplier_bp=q.points_multiplier_bp,
    )
    if q.points_multiplier:
        message.points_multiplier_campaign_id = q.points_multiplier.campaign_id
        message.points_multiplier_name = q.points_multiplier.name
    add_line = message.lines.add
    for x in q.lines:
        add_line(line_id=x.line_id, list_fen=x.list_fen, discount_fen=x.discount_fen, payable_fen=x.payable_fen)
    for a in q.adjustments:
        add_share = message.adjustments.add(
            campaign_id=a.campaign_id,
            coupon_code=a.coupon_code,
            amount_fen=a.amount_fen,
            explanation=a.explanation,
            kind=enum_value(pb.CampaignKind, "CAMPAIGN_KIND", a.kind) if a.kind else 0,
        ).line_shares.add
        for line_id, amount in a.line_shares.items():
            add_share(line_id=line_id, amount_fen=amount)
    for code, reason in q.rejected_coupons:
        message.rejected_coupons.add(coupon_code=code, reason=reason)
    return message


def coupon_message(c: MemberCoupon) -> pb.Coupon:
    """A coupon, with its template's name and terms."""
    return pb.Coupon(
        coupon_code=c.coupon_code,
        template_id=c.template_id,
        member_id=c.member_id,
        state=enum_value(pb.CouponState, "COUPON_STATE", c.state),
        valid_from_time=timestamp(c.valid_from_time),
        valid_until_time=timestamp(c.valid_until_time),
        name=c.template.name,
        terms=terms(c.template),
    )


def check_adjustments(v: Violations, adjustments) -> None:
    for i, a in enumerate(adjustments):
        v.check(a.amount_fen > 0, f"adjustments[{i}].amount_fen", "AMOUNT_INVALID", "amount_fen must be > 0")
        v.check(
            not (a.campaign_id and a.coupon_code),
            f"adjustments[{i}]",
            "ADJUSTMENT_INVALID",
            "an adjustment is a campaign's or a coupon's, not both (the tier price is neither)",
        )
