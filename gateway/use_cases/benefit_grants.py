"""The job that issues what paid membership benefits make due (issue 40): each benefit
month's coupons, the birthday week's coupons or points. The member service knows what
is due and records each grant once (BenefitService.PlanBenefitGrants, page by page of
members); this job, the only process that calls services, issues every pending grant
through the campaign service (IssueCoupons) or the points service (Grant) under an id
derived from the grant, then marks it issued. Run twice, the second run plans nothing
new and issues nothing again (the services answer the first issue's id as a replay);
killed half way, the next run finds what is still pending and issues it."""

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import date

from gateway.use_cases.relay import relayed
from huiyuan.campaign.v1 import campaign_pb2
from huiyuan.common.v1 import actor_pb2
from huiyuan.member.v1 import membership_pb2 as mp
from huiyuan.points.v1 import points_pb2
from huiyuan.runtime.clock import today
from huiyuan.runtime.convert import calendar_day
from huiyuan.runtime.errors import DomainError
from huiyuan.runtime.ids import new_id

BATCH = 2_000  # members a PlanBenefitGrants call looks at: one transaction of the member service
INTERVAL_S = float(os.environ.get("HUIYUAN_BENEFIT_GRANTS_INTERVAL_S", "600"))
ACTOR = actor_pb2.Actor(operator_id="system:benefit-grants", org_path="hq")

log = logging.getLogger("huiyuan.gateway.benefit_grants")


@dataclass
class Outcome:
    planned: int = 0
    issued: int = 0
    refused: int = 0


def _id(prefix: str, key: str) -> str:
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:40]}"


async def run(services, day: date, run_id: str = "") -> Outcome:
    """Plan what is due on day, then issue everything pending."""
    run_id = run_id or new_id("run")
    outcome = Outcome()
    after, page = "", 0
    while True:
        async with relayed("member"):
            planned = await services.benefits.PlanBenefitGrants(
                mp.PlanBenefitGrantsRequest(
                    request_id=_id("grants-plan", f"{run_id}:{day.isoformat()}:{page}"),
                    as_of_date=calendar_day(day),
                    after_member_id=after,
                    page_size=BATCH,
                )
            )
        outcome.planned += planned.planned
        if not planned.next_member_id:
            break
        after, page = planned.next_member_id, page + 1
    token = ""
    while True:
        async with relayed("member"):
            pending = await services.benefits.ListPendingBenefitGrants(
                mp.ListPendingBenefitGrantsRequest(page_size=500, page_token=token)
            )
        for grant in pending.grants:
            try:
                await _issue(services, grant)
            except DomainError as refusal:  # a template gone, say: left pending, for a person to see
                if refusal.reason in ("DATABASE_UNAVAILABLE", "SERVICE_UNAVAILABLE"):
                    raise
                log.error("benefit grant refused", extra={"grant_key": grant.grant_key, "reason": refusal.reason})
                outcome.refused += 1
                continue
            outcome.issued += 1
        token = pending.next_page_token
        if not token:
            return outcome


async def _issue(services, grant: mp.BenefitGrant) -> None:
    if grant.kind == mp.BENEFIT_KIND_BIRTHDAY_POINTS:
        async with relayed("points"):
            await services.points.Grant(
                points_pb2.GrantRequest(
                    request_id=_id("grant", grant.grant_key),
                    member_id=grant.member_id,
                    points=grant.points,
                    source=points_pb2.LOT_SOURCE_CAMPAIGN,
                    memo="付费会员生日礼",
                    actor=ACTOR,
                )
            )
    else:
        async with relayed("campaign"):
            await services.campaign.IssueCoupons(
                campaign_pb2.IssueCouponsRequest(
                    request_id=_id("grant", grant.grant_key),
                    template_id=grant.coupon_template_id,
                    member_ids=[grant.member_id] * grant.quantity,
                    actor=ACTOR,
                )
            )
    async with relayed("member"):
        await services.benefits.CompleteBenefitGrant(
            mp.CompleteBenefitGrantRequest(request_id=_id("grant-done", grant.grant_key), grant_key=grant.grant_key)
        )


def daily(services_of):
    """A background loop (ServiceSpec.background): the job once a business day (looked
    at every HUIYUAN_BENEFIT_GRANTS_INTERVAL_S), again after a restart (it is
    idempotent); a failed run is tried again at the next look."""

    async def loop(ctx) -> None:
        services = services_of(ctx)
        done: date | None = None
        while True:
            day = today()
            if day != done:
                try:
                    outcome = await run(services, day)
                    done = day
                    log.info("benefit grants issued", extra=vars(outcome))
                except Exception:
                    log.exception("benefit grants run failed")
            await asyncio.sleep(INTERVAL_S)

    return loop
