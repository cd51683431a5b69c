"""Campaign pricing and redemption through gRPC on PostgreSQL.

Starts the campaign service as its own process on a fresh database with 30 active
campaigns and coupon templates, then measures:
- Quote of a 10-line order with 3 coupons: closed-loop from one client process
  (32 calls in flight), then open-loop at half that rate for p50/p99;
- Reserve + Redeem (a campaign discount and a coupon per order): closed-loop, then
  open-loop at half that rate.
Targets on this machine: >= 1,000 quotes/s; >= 400 reserve + redeem/s.

usage: python bench/campaign.py [--quick] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import asyncio
import itertools
import json
import sys
import uuid
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from huiyuan.campaign.v1 import campaign_pb2 as pb  # noqa: E402
from huiyuan.campaign.v1 import campaign_pb2_grpc  # noqa: E402
from huiyuan.database import migrate  # noqa: E402
from services.campaign.app import SPEC  # noqa: E402
from bench.common import ADMIN_URL, closed_loop, fresh_database, open_loop, percentile, pgbench_tps, serving, service_channel  # noqa: E402

PORT = 7494
STORE = "hq/east/sh-001"
QUOTER = "m_" + "Q" * 26


def rid() -> str:
    return str(uuid.uuid4())


async def setup(stub, redemptions: int) -> tuple[list[str], str, list[str]]:
    """30 active campaigns, 5 of them for the benchmark's store (the rest in the south,
    as a chain's active set mostly is elsewhere); 3 coupons for the quoting member; a
    coupon per redemption."""
    kinds = [
        dict(kind=pb.CAMPAIGN_KIND_CATEGORY_DISCOUNT, rate_bp=9_000, categories=["c3"]),
        dict(kind=pb.CAMPAIGN_KIND_MEMBER_DAY, rate_bp=9_500, weekdays=[1, 2, 3, 4, 5, 6, 7]),
        dict(kind=pb.CAMPAIGN_KIND_LIMITED_PRICE, sku_prices_fen={"sku-1": 9_00}),
        dict(kind=pb.CAMPAIGN_KIND_THRESHOLD_REDUCTION, steps=[pb.ThresholdStep(threshold_fen=100_00, reduction_fen=5_00)]),
        dict(kind=pb.CAMPAIGN_KIND_TIER_DISCOUNT, rate_bp=9_800, tier_ids=["gold"]),
    ]
    campaign_ids = []
    for i in range(30):
        spec = kinds[i % len(kinds)]
        group = f"g{i % 3}" if spec["kind"] == pb.CAMPAIGN_KIND_THRESHOLD_REDUCTION else ""
        created = await stub.CreateCampaign(pb.CreateCampaignRequest(request_id=rid(), campaign=pb.Campaign(
            name=f"活动{i}", org_path="hq" if i < 5 else "hq/south", exclusive_group=group, **spec)))
        await stub.SetCampaignStatus(pb.SetCampaignStatusRequest(
            request_id=rid(), campaign_id=created.campaign.campaign_id, status=pb.CAMPAIGN_STATUS_ACTIVE))
        campaign_ids.append(created.campaign.campaign_id)
    fixed = await stub.CreateCouponTemplate(pb.CreateCouponTemplateRequest(request_id=rid(), template=pb.CouponTemplate(
        name="5元券", kind=pb.COUPON_KIND_FIXED, amount_fen=5_00, valid_days=30, org_path="hq",
        campaign_id=campaign_ids[0])))
    percent = await stub.CreateCouponTemplate(pb.CreateCouponTemplateRequest(request_id=rid(), template=pb.CouponTemplate(
        name="9折券", kind=pb.COUPON_KIND_PERCENTAGE, rate_bp=9_000, cap_fen=20_00, valid_days=30, org_path="hq")))
    quoter_codes = [c.coupon_code for t in (fixed, percent, fixed) for c in (await stub.IssueCoupons(
        pb.IssueCouponsRequest(request_id=rid(), template_id=t.template.template_id, member_ids=[QUOTER]))).coupons]
    codes = []
    for start in range(0, redemptions, 5_000):
        members = [f"m_{i:026d}" for i in range(start, min(start + 5_000, redemptions))]
        issued = await stub.IssueCoupons(pb.IssueCouponsRequest(
            request_id=rid(), template_id=fixed.template.template_id, member_ids=members), timeout=120)
        codes += [(c.member_id, c.coupon_code) for c in issued.coupons]
    return quoter_codes, campaign_ids[1], codes


def quote_request(codes: list[str]) -> pb.QuoteRequest:
    return pb.QuoteRequest(
        member=pb.MemberContext(member_id=QUOTER, tier_id="gold", tier_price_rate_bp=9_500), store_path=STORE,
        coupon_codes=codes, lines=[pb.OrderLine(line_id=str(i), sku=f"sku-{i}", category=f"c{i % 4}", quantity=1 + i % 3,
                                                unit_price_fen=10_00 + 137 * i) for i in range(10)])


async def reserve_redeem(stub, member: str, code: str, campaign_id: str) -> None:
    held = await stub.ReserveCoupons(pb.ReserveCouponsRequest(
        request_id=rid(), member_id=member, coupon_codes=[code], order_id=rid(), store_path=STORE, ttl={"seconds": 600},
        adjustments=[pb.Adjustment(campaign_id=campaign_id, amount_fen=3_00),
                     pb.Adjustment(coupon_code=code, amount_fen=5_00)]), timeout=10)
    await stub.RedeemCoupons(pb.RedeemCouponsRequest(request_id=rid(), reservation_id=held.reservation_id), timeout=10)


def p50_p99(latencies: list[float]) -> tuple[float, float]:
    return percentile(latencies, 0.5), percentile(latencies, 0.99)


async def measure(seconds: float) -> dict:
    channel = service_channel("campaign", PORT)
    stub = campaign_pb2_grpc.CampaignServiceStub(channel)
    quoter_codes, campaign_id, codes = await setup(stub, 12_000 if seconds < 10 else 40_000)
    request = quote_request(quoter_codes)
    first = await stub.Quote(request)
    assert len(first.adjustments) >= 3 and not first.rejected_coupons, first

    async def quote():
        await stub.Quote(request, timeout=10)

    await closed_loop(quote, 32, 2)
    quotes = await closed_loop(quote, 32, seconds)
    print(f"Quote (10 lines, 30 campaigns, 3 coupons), closed-loop: {quotes:,.0f} quotes/s")
    q50, q99 = p50_p99(await open_loop(quote, quotes / 2, seconds))
    print(f"  open-loop at {quotes / 2:,.0f}/s: p50 {q50:.1f} ms, p99 {q99:.1f} ms")
    pool = itertools.cycle(codes)

    async def redemption():
        member, code = next(pool)
        await reserve_redeem(stub, member, code, campaign_id)

    redeems = await closed_loop(redemption, 32, seconds / 2)
    print(f"Reserve + Redeem, closed-loop: {redeems:,.0f}/s")
    r50, r99 = p50_p99(await open_loop(redemption, redeems / 2, seconds / 2))
    print(f"  open-loop at {redeems / 2:,.0f}/s: p50 {r50:.1f} ms, p99 {r99:.1f} ms")
    await channel.close()
    return {"quotes_per_s": round(quotes), "quote_p50_ms": round(q50, 1), "quote_p99_ms": round(q99, 1),
            "redeems_per_s": round(redeems), "redeem_p50_ms": round(r50, 1), "redeem_p99_ms": round(r99, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pg", default=ADMIN_URL)
    args = parser.parse_args()
    seconds = 5 if args.quick else 20
    url = fresh_database(args.pg, "huiyuan_bench_campaign")
    migrate.upgrade(SPEC.migrations_dir, url, "campaign")
    with serving(["services.campaign"], [PORT], {"HUIYUAN_DATABASE_URL": url, "HUIYUAN_CAMPAIGN_PORT": str(PORT)}):
        figures = asyncio.run(measure(seconds))
    figures["pgbench_tps"] = round(pgbench_tps(args.pg, seconds, "-N"))
    print(f"pgbench -N, 8 clients: {figures['pgbench_tps']:,} tps (how fast this machine is today)")
    print(json.dumps({"bench": "campaign", **figures}))


if __name__ == "__main__":
    main()
