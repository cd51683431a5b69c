"""Coupons for a segment: one coupon of a template to every member a filter selects.

The gateway reads the segment page by page from the member service (ListMembers) and
hands each page to the campaign service's IssueCoupons under one batch_id. The campaign
gives a member at most one coupon per batch, so a run cut short (a service down, the
caller's deadline, a gateway restart) is finished by calling again with the same
request_id: members already served are skipped however the pages fall the second time,
and members who registered meanwhile are served too. The answer of the run that
completes is stored under the request_id; later retries get it without reading the
segment again.
"""

from gateway.domain.callers import Caller, denied
from gateway.domain.scopes import (
    ISSUE_COUPONS as ISSUE,  # the roles and scope of issuing to named members
    SEGMENT_BY_ID,
    WRITE,
    Route,
)
from gateway.use_cases import audit
from gateway.use_cases.relay import actor_of, derived_id, relayed
from gateway.use_cases.scopes import check_named
from huiyuan.campaign.v1 import campaign_pb2
from huiyuan.database import Database, Idempotency
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import member_pb2, segment_pb2

METHOD = "IssueSegmentCoupons"  # the step its derived request_id names
SAVED = Route("segments", WRITE, ISSUE.roles, by_id=SEGMENT_BY_ID)  # a saved segment: its owner under the caller
PAGE_SIZE = 500  # ListMembers' largest page


async def issue(
    services, idempotency: Idempotency, database: Database, caller: Caller, request: pb.IssueSegmentCouponsRequest
) -> pb.IssueSegmentCouponsResponse:
    """The segment's coupons issued (or its stored answer), then recorded in the audit
    trail; with validate_only, how many members the segment has, nothing recorded."""
    answer = await _issue(services, idempotency, caller, request)
    if not request.validate_only:
        await audit.record(
            database,
            caller,
            "IssueSegmentCoupons",
            request,
            request.template_id,
            request.segment.org_path or caller.org_path,  # a saved segment: checked under the caller's node
        )
    return answer


async def _issue(
    services, idempotency: Idempotency, caller: Caller, request: pb.IssueSegmentCouponsRequest
) -> pb.IssueSegmentCouponsResponse:
    job = pb.IssueSegmentCouponsRequest()
    job.CopyFrom(request)
    job.request_id = derived_id(caller.key_id, request.request_id, METHOD)  # two keys' ids never meet
    if job.segment_id:  # a saved segment (SegmentService): its owner under the caller's node
        await check_named(caller, SAVED, services, job.segment_id)
    else:
        if not job.segment.org_path:
            job.segment.org_path = caller.org_path
        if not caller.covers(job.segment.org_path):
            raise denied()
    await check_named(caller, ISSUE, services, job.template_id)
    if request.validate_only:
        if job.segment_id:
            async with relayed("member"):
                counted = await services.segments.CountSegment(
                    segment_pb2.CountSegmentRequest(segment_id=job.segment_id)
                )
            return pb.IssueSegmentCouponsResponse(member_count=counted.member_count)
        return pb.IssueSegmentCouponsResponse(member_count=await count_members(services.member, job.segment))
    done = await idempotency.stored(job, pb.IssueSegmentCouponsResponse)
    if done is not None:
        return done
    members = issued = 0
    pages = (
        saved_pages(services.segments, job.segment_id) if job.segment_id else member_pages(services.member, job.segment)
    )
    async for page in pages:
        async with relayed("campaign"):
            answer = await services.campaign.IssueCoupons(
                campaign_pb2.IssueCouponsRequest(
                    # the same page sent again is the same request; a page that falls
                    # differently is another one, and the batch skips whom it has served
                    request_id=derived_id(caller.key_id, job.request_id, ",".join(page)),
                    template_id=job.template_id,
                    member_ids=page,
                    batch_id=job.request_id,
                    actor=actor_of(caller),
                )
            )
        members += len(page)
        issued += len(answer.coupons) + len(answer.already_issued_member_ids)
    return await idempotency.remember(job, pb.IssueSegmentCouponsResponse(member_count=members, issued_count=issued))


async def member_pages(member, segment: member_pb2.MemberFilter):
    """The ids of the members a filter selects, a page at a time (member: the member
    service's stub)."""
    token = ""
    while True:
        async with relayed("member"):
            found = await member.ListMembers(
                member_pb2.ListMembersRequest(filter=segment, page_size=PAGE_SIZE, page_token=token)
            )
        if found.members:
            yield [m.member_id for m in found.members]
        if not (token := found.next_page_token):
            return


async def saved_pages(segments, segment_id: str):
    """The ids of the members a saved segment selects now, a page at a time (segments:
    the member service's SegmentService stub)."""
    token = ""
    while True:
        async with relayed("member"):
            found = await segments.ListSegmentMembers(
                segment_pb2.ListSegmentMembersRequest(segment_id=segment_id, page_size=PAGE_SIZE, page_token=token)
            )
        if found.member_ids:
            yield list(found.member_ids)
        if not (token := found.next_page_token):
            return


async def count_members(member, segment: member_pb2.MemberFilter) -> int:
    return sum([len(page) async for page in member_pages(member, segment)])
