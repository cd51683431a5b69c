"""The reports' side of the member service (docs/reports.md): the rollups' rebuild from
the raw records, and the members' snapshot (SummarizeMembers). The rollups themselves
are recorded where each fact is written (storage/rollups.py) and read through
RollupService (huiyuan/runtime/rollup_service.py)."""

from datetime import date

from huiyuan.database import Database, Transaction
from huiyuan.runtime.clock import utcnow
from services.member.domain.reports import Summary
from services.member.storage import homes, rollups, summaries


async def rebuild(database: Database) -> int:
    """Recompute every member rollup from the raw records (members, visits, returns, tier
    changes, home store moves) with the functions the live path uses; how many
    contributions were counted. Facts committed meanwhile are folded after it. Every
    member's home is queued for the wallet again (its stored value by home: a replica
    of a release before home changes set homes the wallet never heard of)."""
    async with database.job_transaction() as tx:
        await homes.queue_every_home(tx, utcnow())
    return await rollups.ROLLUPS.rebuild(database, rollups.raw_facts)


async def summarize(tx: Transaction, org_path: str, as_of: date) -> Summary:
    """The members homed under org_path, as they are now, counted from as_of."""
    return await summaries.summarize(tx, org_path, as_of)
