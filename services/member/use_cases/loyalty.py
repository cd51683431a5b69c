"""Tier programmes and the value score (issue 40; docs/loyalty.md): HQ's versions of the
programme, the climb at the moment a threshold is crossed, the daily re-evaluation of
the terms that ended, the tier page, the members at risk, and the monthly value score.

The jobs (run_reevaluation, run_value_scores) commit in batches of their own
transactions, each of which reads the run's cursor under the job's turn (so that two
replicas running it at once share the work rather than repeat it), decides for a batch
of members from one read per kind of fact, writes the batch with one statement per
table, and moves the cursor: a run killed half-way is finished by the next run, and a
run of a day or month done already reads one row and stops.
"""

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from huiyuan.database import Database, Transaction, take_turn_on
from huiyuan.runtime.business_time import day_start, local
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.ids import new_id
from services.member.domain import loyalty as rules
from services.member.domain.loyalty import Outcome, Programme, Term
from services.member.domain.members import Member
from services.member.domain.tiers import CLIMB_OPERATOR, RETURN_OPERATOR, TierChange, tier_not_found
from services.member.domain.value_score import (
    DEFAULT_WEIGHTS,
    Inputs,
    Line,
    Score,
    explain,
    months_between,
    not_scored,
    score_of,
)
from services.member.storage import loyalty as stored, tiers as stored_tiers
from services.member.use_cases.members import require_member

TIER_JOB, SCORE_JOB = "tier-reevaluation", "value-score"
BATCH = 5000
# On PostgreSQL a batch of the scores is one statement that keeps no member's row in
# Python, so it may be larger.
SCORE_BATCH = 20_000


# --- Programme versions --------------------------------------------------------------


async def create_version(tx: Transaction, p: Programme, now: datetime) -> Programme:
    """A version kept, its rules ordered by their tiers' ranks; refused with field
    violations if their thresholds go down with rank or overlap (nothing written)."""
    ranks, _ = await stored.ranks_and_names(tx)
    for r in p.rules:
        if r.tier_id not in ranks:
            raise tier_not_found(r.tier_id)
    v = Violations()
    p.rules = rules.check_rules(v, p.rules, ranks)
    v.raise_if_any()
    p.version_id, p.create_time = new_id("tierprog"), now
    await stored.insert_version(tx, p)
    _versions_seen.clear()  # the next visit here asks again
    return p


async def list_versions(tx: Transaction, before: date | None, limit: int) -> list[Programme]:
    return await stored.versions(tx, before, limit)


# Every visit and top-up asks which programme is in force: while there is none (a chain
# that climbs by lifetime spend), that costs no read but one every VERSIONS_SEEN_S.
# Versions are never edited; one made on this process is seen at once, on another
# replica within that.
VERSIONS_SEEN_S = 10.0
_versions_seen: list[tuple[float, bool]] = []  # (when read, whether any version exists)


async def programme_on(tx: Transaction, day: date) -> Programme | None:
    if not _versions_seen or time.monotonic() - _versions_seen[0][0] > VERSIONS_SEEN_S:
        _versions_seen[:] = [(time.monotonic(), await stored.any_version(tx))]
    if not _versions_seen[0][1]:
        return None
    return await stored.in_force(tx, day)


def _bounds(p: Programme, day: date) -> tuple[datetime | None, datetime]:
    """The window of a count on business day `day`, as UTC-comparable moments."""
    start = p.window_start(day)
    return (day_start(start) if start else None), day_start(day + timedelta(days=1))


async def measure_of(tx: Transaction, p: Programme, member_id: str, day: date) -> int:
    start, end = _bounds(p, day)
    return (await stored.measures(tx, p, [member_id], start, end))[member_id]


# --- At the moment: climbs, returns, assignments -------------------------------------


async def climb(tx: Transaction, member: Member, p: Programme, now: datetime):
    """Move a member (locked) up to the best tier of the programme their measure
    reaches, if it is better than theirs, starting a term: (change, tier) or None."""
    if p.measure == rules.Measure.VALUE_SCORE:
        return None  # the score moves monthly: the re-evaluation lifts by it
    day = local(now).date()
    value = await measure_of(tx, p, member.member_id, day)
    ranks, names = await stored.ranks_and_names(tx)
    reached = rules.climb_to(p, ranks, member.tier_id, value)
    if reached is None:
        return None
    change = TierChange(
        member.member_id,
        member.tier_id,
        reached.tier_id,
        rules.climb_reason(p, reached, value, names),
        CLIMB_OPERATOR,
        now,
    )
    await stored_tiers.move(tx, change)
    await _start_term(tx, member.member_id, reached.tier_id, p.term_end(day))
    tier = await stored_tiers.get(tx, reached.tier_id)
    return change, tier


async def after_return(
    tx: Transaction, member: Member, p: Programme, climbs: list[tuple[str, str]], cause: str, now: datetime
) -> TierChange | None:
    """Undo the climbs of a member (locked) that their measure, after a return or a
    refunded top-up, no longer reaches by the programme: down to the tier they had
    before climbing at most, lifted from there to the best one still reached."""
    if not climbs or p.measure == rules.Measure.VALUE_SCORE:
        return None
    day = local(now).date()
    value = await measure_of(tx, p, member.member_id, day)
    ranks, names = await stored.ranks_and_names(tx)
    tier_id = rules.tier_after_return(p, ranks, member.tier_id, climbs, value)
    if tier_id == member.tier_id:
        return None
    left = names.get(member.tier_id, member.tier_id)
    reason = f"{cause}{rules.counted_words(p, value)},不足{left}"
    change = TierChange(member.member_id, member.tier_id, tier_id, reason, RETURN_OPERATOR, now)
    await stored_tiers.move(tx, change)
    await _start_term(tx, member.member_id, tier_id, p.term_end(day) if tier_id else None)
    return change


async def _start_term(tx: Transaction, member_id: str, tier_id: str, term_end: date | None) -> None:
    """A new term on tier_id, keeping a tier given by hand as the floor."""
    term = await stored.term_of(tx, member_id)
    await stored.save_terms(
        tx,
        [
            {
                "member_id": member_id,
                "tier_id": tier_id,
                "term_end": term_end,
                "evaluated_on": None,
                "floor_tier_id": term.floor_tier_id if term else "",
                "floor_end": term.floor_end if term else None,
            }
        ],
    )


async def assigned(tx: Transaction, member_id: str, tier_id: str, end_date: date | None, now: datetime) -> None:
    """A tier given by hand: with an end date it is the member's floor and their term
    until then; without one it starts a term as if reached (none without a programme)."""
    day = local(now).date()
    p = await programme_on(tx, day)
    if end_date is not None:
        term_end: date | None = end_date
    else:
        term_end = p.term_end(day) if p is not None and p.rule_of(tier_id) is not None else None
    await stored.save_terms(
        tx,
        [
            {
                "member_id": member_id,
                "tier_id": tier_id,
                "term_end": term_end,
                "evaluated_on": None,
                "floor_tier_id": tier_id if end_date else "",
                "floor_end": end_date,
            }
        ],
    )


# --- The daily re-evaluation ---------------------------------------------------------


@dataclass
class RunCounts:
    evaluated: int = 0
    terms_started: int = 0
    renewed: int = 0
    downgraded: int = 0
    upgraded: int = 0
    in_grace: int = 0
    batches: int = 0
    done: bool = False
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k not in ("done", "extra")}


async def run_reevaluation(
    database: Database, day: date, now: datetime, batch: int = BATCH, stop_after: int | None = None
) -> RunCounts:
    """Re-evaluate the members whose term ended by business day `day`, in batches of
    their own transactions; stop_after: at most this many batches (a test's kill)."""
    key = day.isoformat()
    done_batches = 0
    while True:
        async with database.job_transaction() as tx:
            await take_turn_on(tx, f"loyalty:{TIER_JOB}")
            await stored.room_to_sort(tx)
            cursor, done, counts = await stored.job_run(tx, TIER_JOB, key)
            run = RunCounts(**counts, done=done)
            if done:
                return run
            p = await stored.in_force(tx, day)
            span = await stored.span_after(tx, cursor, batch) if p else None
            if span is None:
                run.done = True
                await stored.save_job_run(tx, TIER_JOB, key, cursor, True, run.as_dict(), now)
                return run
            assert p is not None
            due = await stored.due_in(tx, p, day, span)
            if due:
                await _decide_batch(tx, p, day, due, span, run, now)
            run.batches += 1
            await stored.save_job_run(tx, TIER_JOB, key, span[1], False, run.as_dict(), now)
        done_batches += 1
        if stop_after is not None and done_batches >= stop_after:
            return run


async def _decide_batch(
    tx: Transaction,
    p: Programme,
    day: date,
    due: list[tuple[str, str, str, Term | None]],
    span: stored.Span,
    run: RunCounts,
    now: datetime,
) -> None:
    ranks, names = await stored.ranks_and_names(tx)
    start, end = _bounds(p, day)
    values = await stored.measures(tx, p, [member_id for member_id, *_ in due], start, end, span)
    at_end = await _counts_at_term_end(tx, p, day, due)
    terms, moves = [], []
    for member_id, tier_id, home, term in due:
        value_at_end = at_end.get(member_id, values[member_id])
        decision = rules.decide(p, ranks, names, tier_id, term, values[member_id], day, value_at_end)
        if decision.outcome == Outcome.NONE:
            continue
        run.evaluated += 1
        if decision.outcome in (Outcome.UP, Outcome.DOWN):
            operator = rules.JOB_OPERATOR
            moves.append((TierChange(member_id, tier_id, decision.tier_id, decision.reason, operator, now), home))
        run.terms_started += decision.outcome == Outcome.START
        run.renewed += decision.outcome == Outcome.RENEW
        run.downgraded += decision.outcome == Outcome.DOWN
        run.upgraded += decision.outcome == Outcome.UP
        run.in_grace += decision.outcome in (Outcome.GRACE, Outcome.HELD)
        terms.append(
            {
                "member_id": member_id,
                "tier_id": decision.tier_id,
                "term_end": decision.term_end,
                "evaluated_on": day,
                "floor_tier_id": term.floor_tier_id if term else "",
                "floor_end": term.floor_end if term else None,
            }
        )
    await stored.move_many(tx, moves)
    await stored.save_terms(tx, terms)


async def _counts_at_term_end(
    tx: Transaction, p: Programme, day: date, due: list[tuple[str, str, str, Term | None]]
) -> dict[str, int]:
    """The measure of the members whose term ended before day, counted up to its last
    day: one read per distinct last day (a batch has few; at a year end, one)."""
    by_end: dict[date, list[str]] = {}
    for member_id, tier_id, _, term in due:
        if term is not None and term.tier_id == tier_id and term.term_end is not None and term.term_end < day:
            by_end.setdefault(term.term_end, []).append(member_id)
    out: dict[str, int] = {}
    for end_day, member_ids in by_end.items():
        start, end = _bounds(p, end_day)
        out.update(await stored.measures(tx, p, member_ids, start, end))
    return out


# --- The tier page and the members at risk -------------------------------------------


async def progress_of(tx: Transaction, member_id: str, day: date) -> rules.Progress:
    member = await require_member(tx, member_id)
    p = await programme_on(tx, day)
    if p is None:
        raise rules.no_programme()
    ranks, names = await stored.ranks_and_names(tx)
    value = await measure_of(tx, p, member_id, day)
    term = await stored.term_of(tx, member_id)
    return rules.progress(p, ranks, names, member_id, member.tier_id, term, value, day)


async def members_at_risk(tx: Transaction, org_path: str, day: date, after: str, limit: int) -> list[rules.Progress]:
    """Members under org_path due to move down within the notice period and below the
    keep threshold, by member id after `after`: at most limit of them."""
    p = await programme_on(tx, day)
    if p is None:
        return []  # no programme: nobody moves down
    ranks, names = await stored.ranks_and_names(tx)
    latest_end = day + timedelta(days=p.notice_days - p.grace_days)
    start, end = _bounds(p, day)
    found: list[rules.Progress] = []
    for _ in range(20):  # at most 20 reads of candidates for one page
        candidates = await stored.at_risk_batch(tx, p, latest_end, org_path, after, max(limit * 2, 100))
        if not candidates:
            break
        after = candidates[-1][0]
        near = [(m, t, term) for m, t, term in candidates if rules.at_risk_on(p, term, day)]
        values = await stored.measures(tx, p, [m for m, *_ in near], start, end)
        for member_id, tier_id, term in near:
            standing = rules.progress(p, ranks, names, member_id, tier_id, term, values[member_id], day)
            if standing.at_risk:
                found.append(standing)
                if len(found) >= limit:
                    return found
    return found


# --- The value score -----------------------------------------------------------------


def month_of(day: date) -> date:
    return day.replace(day=1)


async def weights(tx: Transaction) -> tuple[dict[str, int], datetime | None]:
    found, when = await stored.current_weights(tx)
    return (found or dict(DEFAULT_WEIGHTS)), when


async def set_weights(tx: Transaction, new: dict[str, int], now: datetime) -> tuple[dict[str, int], datetime]:
    await stored.set_weights(tx, new, now)
    return new, now


async def _scores(
    tx: Transaction,
    member_ids: list[str],
    month: date,
    as_of: date,
    w: dict[str, int],
    span: stored.Span | None = None,
) -> list[Score]:
    """The scores of members for a month, counted over the 12 months before the day
    after as_of (business days)."""
    end_day = as_of + timedelta(days=1)
    start_day = rules.add_months(end_day, -12)
    found = await stored.score_inputs(tx, member_ids, day_start(start_day), day_start(end_day), span)
    out = []
    for member_id, (inputs, registered, last) in found.items():
        counted = Inputs(
            days_since_visit=(as_of - local(last).date()).days if last else None,
            visits=inputs.visits,
            spend_fen=inputs.spend_fen,
            tenure_months=months_between(local(registered).date(), end_day),
            consent=inputs.consent,
            birthday=inputs.birthday,
            gender=inputs.gender,
            care_contact=inputs.care_contact,
        )
        out.append(score_of(member_id, month, counted, w))
    return out


async def run_value_scores(
    database: Database, month: date, now: datetime, batch: int = SCORE_BATCH, stop_after: int | None = None
) -> int:
    """Score every member for a month over the 12 months before its first day, in
    batches; a member scored for the month already is kept. The members scored by the
    month's run so far."""
    key = month.isoformat()
    as_of = month - timedelta(days=1)
    done_batches = 0
    while True:
        async with database.job_transaction() as tx:
            await take_turn_on(tx, f"loyalty:{SCORE_JOB}")
            await stored.room_to_sort(tx)
            cursor, done, counts = await stored.job_run(tx, SCORE_JOB, key)
            scored = counts.get("scored", 0)
            if done:
                return scored
            w, _ = await weights(tx)
            if stored.dialect_of(tx) == "postgresql":  # a span scored by one statement, in the database
                span = await stored.span_after(tx, cursor, batch)
                if span is None:
                    await stored.save_job_run(tx, SCORE_JOB, key, cursor, True, {"scored": scored}, now)
                    return scored
                start = day_start(rules.add_months(month, -12))
                scored += await stored.score_span(tx, span, month, start, day_start(month), as_of, month, w, now)
                upto = span[1]
            else:
                read = await stored.member_ids_after(tx, cursor, batch, day_start(month))
                if not read:
                    await stored.save_job_run(tx, SCORE_JOB, key, cursor, True, {"scored": scored}, now)
                    return scored
                ids = [member_id for member_id, registered in read if registered]  # members by the month's start
                upto = read[-1][0]
                span = (cursor, upto, len(read))
                scored_already = await stored.scored_in(tx, month, ids, span) if ids else set()
                fresh = [m for m in ids if m not in scored_already]
                scores = await _scores(tx, fresh, month, as_of, w, span)
                await stored.save_scores(tx, scores, now, replace=False)
                scored += len(scores)
            await stored.save_job_run(tx, SCORE_JOB, key, upto, False, {"scored": scored}, now)
        done_batches += 1
        if stop_after is not None and done_batches >= stop_after:
            return scored


@dataclass
class Explained:
    score: Score
    compute_time: datetime
    lines: list[Line]
    previous: Score | None


async def recompute_one(tx: Transaction, member_id: str, now: datetime) -> Explained:
    """One member's score now, over the 12 months to today, kept as this month's."""
    await require_member(tx, member_id)
    today = local(now).date()
    w, _ = await weights(tx)
    (score,) = await _scores(tx, [member_id], month_of(today), today, w)
    await stored.save_scores(tx, [score], now, replace=True)
    return await score_of_member(tx, member_id)


async def score_of_member(tx: Transaction, member_id: str) -> Explained:
    await require_member(tx, member_id)
    found = await stored.scores_of(tx, member_id, None, 2)
    if not found:
        raise not_scored(member_id)
    (score, when), previous = found[0], (found[1][0] if len(found) > 1 else None)
    return Explained(score, when, explain(score, previous), previous)


async def history(tx: Transaction, member_id: str, before: date | None, limit: int) -> list[Explained]:
    """The member's scores, the latest first, each explained against the month before it."""
    await require_member(tx, member_id)
    found = await stored.scores_of(tx, member_id, before, limit + 1)
    out = []
    for i, (score, when) in enumerate(found[:limit]):
        previous = found[i + 1][0] if i + 1 < len(found) else None
        out.append(Explained(score, when, explain(score, previous), previous))
    return out


# --- The schedule --------------------------------------------------------------------

JOBS_INTERVAL_S = 300.0


def nightly(interval_s: float = JOBS_INTERVAL_S):
    """The background loop (ServiceSpec.background) that runs the re-evaluation of
    yesterday (business time) and the value scores of this month, every few minutes:
    a run done already reads its cursor row and stops, so the loop costs two reads once
    the day's work is done, and a replica that died half-way is finished by the next
    tick of any replica."""
    import asyncio
    import logging

    from huiyuan.runtime.clock import utcnow

    log = logging.getLogger("huiyuan.loyalty")

    async def loop(ctx) -> None:
        while True:
            await asyncio.sleep(interval_s)  # not at start: a process that starts serves first
            try:
                now = utcnow()
                today = local(now).date()
                # side by side (as the tag job's loop runs beside them): each its own
                # batches, transactions and turn (take_turn_on), so the night lasts as
                # long as the longest of them on the database's cores, not their sum
                results = await asyncio.gather(
                    run_reevaluation(ctx.database, today - timedelta(days=1), now),
                    run_value_scores(ctx.database, month_of(today), now),
                    return_exceptions=True,
                )
                for failed in (r for r in results if isinstance(r, BaseException)):
                    raise failed
            except Exception:  # retried at the next tick (logged, so no BLE001)
                log.exception("the loyalty jobs failed")

    return loop
