"""Automatic tags and saved segments: define, run, count, list, export (docs: the
loyalty page, item 5).

The tag job (run_rules) is the daily background loop's and RunTagRules': for each rule,
one run per business day (and per revision of a segment's rule), in batches of
BATCH members, each its own transaction that also moves the run's cursor; the
thresholds a run ranks by are fixed when it starts. A run killed half-way is resumed
by the next call from its cursor; a run done is not done again that day, and a second
run on another day writes only what changed."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime

from huiyuan.database import Database, Transaction
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.ids import new_id
from services.member.domain import segments as rules
from services.member.domain.segments import Criteria, RuleKind, Segment, TagRule
from services.member.storage import members as stored_members, org, segments as stored, tiers
from services.member.storage.loyalty import room_to_sort
from services.member.use_cases.imports import EXPORT_COLUMNS, export_row
from services.member.use_cases.memberships import require_plan
from services.member.use_cases.org import require_org_node

BATCH = 10_000  # members a transaction of the job covers
JOB_INTERVAL_S = 300.0  # the background loop looks for today's runs this often

log = logging.getLogger("huiyuan.segments")


@dataclass
class RunResult:
    rules: int = 0
    added: int = 0
    removed: int = 0
    batches: int = 0


class Stopped(Exception):
    """A run stopped after the batches it was allowed (tests: a job killed half-way)."""


# --- rules ---------------------------------------------------------------------------


async def _tag_free(tx: Transaction, tag: str, but: str = "") -> None:
    taken = await stored.live_rule_with_tag(tx, tag)
    if taken is not None and taken.rule_id != but:
        raise rules.tag_taken(tag)


async def create_rule(tx: Transaction, org_path: str, tag: str, kind: RuleKind, params: dict, now: datetime) -> TagRule:
    await require_org_node(tx, org_path, "tag_rule.org_path")
    if kind == RuleKind.PAID_MEMBER and params["plan_id"]:
        await require_plan(tx, params["plan_id"])
    await _tag_free(tx, tag)
    rule = TagRule(new_id("tr"), org_path, tag, kind, params, now)
    await stored.insert_rule(tx, rule)
    return rule


async def require_rule(tx: Transaction, rule_id: str) -> TagRule:
    """The rule, deleted or not."""
    rule = await stored.get_rule(tx, rule_id)
    if rule is None:
        raise rules.rule_not_found(rule_id)
    return rule


async def delete_rule(tx: Transaction, rule_id: str) -> TagRule:
    rule = await require_rule(tx, rule_id)
    if rule.segment_id:
        raise rules.rule_of_segment(rule_id, rule.segment_id)
    if rule.live:
        await stored.end_rule(tx, rule_id)
    return rule


async def list_rules(tx: Transaction, org_path: str, after: str | None, limit: int) -> list[TagRule]:
    return await stored.rules_after(tx, org_path, after, limit)


# --- segments ------------------------------------------------------------------------


async def create_segment(tx: Transaction, org_path: str, name: str, criteria: dict, tag: str, now: datetime) -> Segment:
    """criteria: as kept (rules.criteria_to_dict)."""
    await require_org_node(tx, org_path, "segment.org_path")
    segment = Segment(new_id("sg"), org_path, name, criteria, tag, "", now, now)
    if tag:
        await _tag_free(tx, tag)
        rule = TagRule(new_id("tr"), org_path, tag, RuleKind.SEGMENT, {}, now, segment_id=segment.segment_id)
        await stored.insert_rule(tx, rule)
        segment.rule_id = rule.rule_id
    await stored.insert_segment(tx, segment)
    return segment


async def require_segment(
    tx: Transaction, segment_id: str, *, for_update: bool = False, usable: bool = True
) -> Segment:
    """The segment; usable: not deleted (else SEGMENT_DELETED)."""
    segment = await stored.get_segment(tx, segment_id, for_update=for_update)
    if segment is None:
        raise rules.segment_not_found(segment_id)
    if usable and segment.delete_time is not None:
        raise rules.segment_deleted(segment_id)
    return segment


async def update_segment(
    tx: Transaction, segment_id: str, name: str, criteria: dict, tag: str, now: datetime
) -> tuple[Segment, list[str]]:
    """The segment changed; the rules to run now (its own, and one it ended)."""
    current = await require_segment(tx, segment_id, for_update=True)
    updated = replace(current, name=name, criteria=criteria, tag=tag, update_time=now)
    to_run: list[str] = []
    if current.rule_id and tag != current.tag:  # another tag, or none: the old one comes off
        await stored.end_rule(tx, current.rule_id)
        to_run.append(current.rule_id)
        updated.rule_id = ""
    if tag and not updated.rule_id:
        await _tag_free(tx, tag)
        rule = TagRule(new_id("tr"), current.org_path, tag, RuleKind.SEGMENT, {}, now, segment_id=segment_id)
        await stored.insert_rule(tx, rule)
        updated.rule_id = rule.rule_id
    elif updated.rule_id:
        await stored.next_revision(tx, updated.rule_id)
    if updated.rule_id:
        to_run.append(updated.rule_id)
    await stored.update_segment(tx, updated)
    return updated, to_run


async def delete_segment(tx: Transaction, segment_id: str, now: datetime) -> str:
    """The segment deleted; the rule of its tag to run now ("": none)."""
    segment = await require_segment(tx, segment_id, for_update=True, usable=False)
    if segment.delete_time is not None:
        return ""
    if segment.rule_id:
        await stored.end_rule(tx, segment.rule_id)
    await stored.delete_segment(tx, segment_id, now)
    return segment.rule_id


async def list_segments(tx: Transaction, org_path: str, after: str | None, limit: int) -> list[Segment]:
    return await stored.segments_after(tx, org_path, after, limit)


def criteria_of(segment: Segment) -> Criteria:
    """What the segment selects, its filter's node defaulting to its owner."""
    criteria = rules.criteria_from_dict(segment.criteria)
    if not criteria.query.org_path:
        criteria.query.org_path = segment.org_path
    return criteria


async def _condition(tx: Transaction, segment: Segment, now: datetime):
    criteria = criteria_of(segment)
    day = rules.run_day(now)
    cuts = await stored.rfm_cuts(tx, segment.org_path, criteria.rfm, day) if criteria.rfm else None
    return stored.segment_condition(criteria, segment.org_path, day, cuts)


async def count_segment(tx: Transaction, segment_id: str, now: datetime) -> int:
    segment = await require_segment(tx, segment_id)
    return await stored.count_selected(tx, await _condition(tx, segment, now))


async def segment_member_ids(tx: Transaction, segment_id: str, before: str | None, limit: int, now: datetime):
    segment = await require_segment(tx, segment_id)
    return await stored.selected_ids(tx, await _condition(tx, segment, now), before, limit)


@asynccontextmanager
async def exporting(database: Database, segment_id: str, now: datetime) -> AsyncIterator[AsyncIterator[list]]:
    """The rows of the segment's export (ExportMembers' columns), from one snapshot."""
    async with stored_members.snapshot(database) as tx:
        segment = await require_segment(tx, segment_id)
        condition = await _condition(tx, segment, now)
        tier_names = await tiers.names(tx)
        store_names = await org.names(tx)

        async def rows() -> AsyncIterator[list]:
            result = await tx.stream(stored.selected_rows(condition))  # type: ignore[attr-defined]
            async for row in result:
                yield export_row(stored_members.to_member(row), tier_names, store_names)

        yield rows()


# --- the job -------------------------------------------------------------------------


async def run_rules(
    database: Database,
    now: datetime,
    *,
    rule_id: str = "",
    batch: int = BATCH,
    stop_after: int | None = None,
) -> RunResult:
    """Every rule's run of now's business day (or rule_id's), to its end. stop_after:
    raise Stopped once that many batches committed (a job killed half-way)."""
    day = rules.run_day(now)
    async with database.reading() as tx:
        if rule_id:
            found = await stored.get_rule(tx, rule_id)
            if found is None:
                raise rules.rule_not_found(rule_id)
            todo = [found]
        else:
            todo = await stored.rules_to_run(tx)
    result = RunResult()
    for rule in todo:
        await _run_rule(database, rule, day, now, batch, stop_after, result)
        result.rules += 1
    return result


async def _segment_criteria(tx: Transaction, rule: TagRule) -> Criteria | None:
    if rule.kind != RuleKind.SEGMENT or not rule.live:
        return None
    segment = await stored.get_segment(tx, rule.segment_id)
    return criteria_of(segment) if segment and segment.delete_time is None else None


async def _run_rule(
    database: Database, rule: TagRule, day: date, now: datetime, batch: int, stop_after: int | None, result: RunResult
) -> None:
    async with database.job_transaction() as tx:
        run = await stored.get_run(tx, rule, day)
        if run is None:
            criteria = await _segment_criteria(tx, rule)
            await stored.start_run(tx, rule, day, await stored.fix_run(tx, rule, day, criteria))
    while True:
        async with database.job_transaction() as tx:
            run = await stored.get_run(tx, rule, day, for_update=True)
            current = await stored.get_rule(tx, rule.rule_id)
            if run is None or run.done or current is None or current.revision != rule.revision:
                return  # done, or the rule changed meanwhile: its new run is another's
            rule = current
            criteria = await _segment_criteria(tx, rule)
            await room_to_sort(tx)
            upto = await stored.scan_upto(tx, rule, run.cursor, batch)
            condition = stored.rule_condition(rule, dict(run.fixed), day, criteria, (run.cursor, upto))
            selected = await stored.batch_ids(tx, condition, run.cursor, upto)
            carrying = await stored.carrying_ids(tx, rule.rule_id, run.cursor, upto)
            add, remove = selected - carrying, carrying - selected
            await stored.tag_members(tx, rule, add, remove)
            await stored.advance_run(tx, rule, day, upto or "", upto is None, len(add), len(remove))
            if upto is None:
                await stored.finish_rule(tx, rule.rule_id, now)
        result.added += len(add)
        result.removed += len(remove)
        result.batches += 1
        if upto is None:
            return
        if stop_after is not None and result.batches >= stop_after:
            raise Stopped


async def refresh(database: Database, rule_ids: list[str], now: datetime) -> None:
    """The rules just made or changed, run now (their members right after the change)."""
    for rule_id in rule_ids:
        await run_rules(database, now, rule_id=rule_id)


def job():
    """The daily tag job (ServiceSpec.background): every JOB_INTERVAL_S it runs what of
    today's runs is not done, so the first pass after midnight in business time does
    the day's, and a run cut short (a restart) is finished at the next pass."""

    async def loop(ctx) -> None:
        while True:
            try:
                await run_rules(ctx.database, utcnow())
            except Exception:  # retried at the next pass (logged, so no BLE001)
                log.exception("the tag job failed")
            await asyncio.sleep(JOB_INTERVAL_S)

    return loop


__all__ = ["EXPORT_COLUMNS", "RunResult", "Stopped", "job", "run_rules"]
