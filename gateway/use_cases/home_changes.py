"""The relay of members' homes from the member service to the wallet, so that the
liability report can give stored value by the members' home region (docs/reports.md).

The member service queues a change of home with the registration or the move that makes
it (ListPendingHomeChanges); this loop hands each page to the wallet
(ApplyMemberHomes) and only then completes it in the member service. Killed between the
two, the next turn hands the page over again: the wallet ignores a change not newer
than the member's last applied one, so nothing moves twice."""

import asyncio
import logging
import os

from gateway.use_cases.relay import relayed
from huiyuan.member.v1 import member_pb2
from huiyuan.runtime.errors import DomainError, InvalidArgument
from huiyuan.wallet.v1 import wallet_pb2

PAGE = 1000  # changes a turn hands over: one transaction of the wallet
INTERVAL_S = float(os.environ.get("HUIYUAN_HOME_RELAY_INTERVAL_S", "2"))

log = logging.getLogger("huiyuan.gateway.home_changes")


async def relay(services) -> int:
    """Hand every pending change to the wallet, page by page; how many."""
    relayed_in_all = 0
    while True:
        async with relayed("member"):
            page = await services.member.ListPendingHomeChanges(
                member_pb2.ListPendingHomeChangesRequest(page_size=PAGE)
            )
        if not page.changes:
            return relayed_in_all
        try:
            await _apply(services, page.changes)
        except InvalidArgument:  # one the wallet refuses must not hold up the others for ever
            for change in page.changes:
                try:
                    await _apply(services, [change])
                except InvalidArgument as refusal:
                    log.error(
                        "a member's home refused by the wallet, dropped",
                        extra={"change_id": change.change_id, "member_id": change.member_id, "reason": refusal.reason},
                    )
        async with relayed("member"):
            await services.member.CompleteHomeChanges(
                member_pb2.CompleteHomeChangesRequest(change_ids=[c.change_id for c in page.changes])
            )
        relayed_in_all += len(page.changes)


async def _apply(services, changes) -> None:
    async with relayed("wallet"):
        await services.wallet.ApplyMemberHomes(
            wallet_pb2.ApplyMemberHomesRequest(
                homes=[
                    wallet_pb2.MemberHome(
                        change_id=c.change_id, member_id=c.member_id, home_store_path=c.home_store_path
                    )
                    for c in changes
                ]
            )
        )


def every_few_seconds(services_of):
    """A background loop (ServiceSpec.background): relay, then wait INTERVAL_S; a failed
    turn (a service down) is tried again at the next."""

    async def loop(ctx) -> None:
        services = services_of(ctx)
        while True:
            try:
                await relay(services)
            except DomainError as refusal:  # a service starting or down: the next turn
                log.warning("relaying members' homes to the wallet failed: %s", refusal.reason)
            except Exception:
                log.exception("relaying members' homes to the wallet failed")
            await asyncio.sleep(INTERVAL_S)

    return loop
