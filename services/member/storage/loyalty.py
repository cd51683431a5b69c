"""Tier programmes, the members' terms, the batched jobs' cursors and the value scores:
their statements, set-based (a batch of members is one read per kind of fact and one
write per table, never a round trip per member)."""

import functools
import json
from datetime import date, datetime

from sqlalchemy import and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from huiyuan.database import Transaction, dialect_name, insert_for, violated_unique
from huiyuan.runtime.business_time import CHAIN_ZONE
from services.member.domain import reports, value_score as vs
from services.member.domain.loyalty import Downgrade, Measure, Programme, Rule, Term, Window, version_exists
from services.member.domain.tiers import TierChange
from services.member.domain.value_score import COMPONENTS, Inputs, Score
from services.member.storage.rollups import record
from services.member.storage.tables import (
    care_contacts,
    loyalty_job_runs,
    member_tier_terms,
    members,
    tier_changes,
    tier_programme_versions,
    tiers,
    top_ups,
    value_score_weights,
    value_scores,
    visit_returns,
    visits,
)

# A batch's members: their ids, and the span of ids the batch read them from, (after,
# last, how many members lie in it), when it read a span. A statement on many of a
# span's members selects the span (an index range scan) and keeps the batch's in
# Python; on a few of them, or without a span, it names them (IN).
Span = tuple[str, str, int]


def _of(column, member_ids: list[str], span: Span | None):
    if span is not None and len(member_ids) * 4 >= span[2]:
        return and_(column > span[0], column <= span[1]), {}
    return column.in_(bindparam("ids", expanding=True)), {"ids": member_ids}


async def room_to_sort(tx: Transaction) -> None:
    """A batch of a nightly job sorts and hashes a batch's visits: on PostgreSQL it may
    use more memory than a call's statement (work_mem, for this transaction only), so
    its sorts are not spilled to disk."""
    if dialect_name(tx) == "postgresql":
        await tx.execute(text(f"SET LOCAL work_mem = '{JOB_WORK_MEM}'"))


JOB_WORK_MEM = "64MB"


# --- Programme versions --------------------------------------------------------------


def _to_programme(r) -> Programme:
    return Programme(
        r.version_id,
        r.effective_from,
        Measure(r.measure),
        Window(r.window),
        r.window_days,
        r.term_months,
        r.grace_days,
        Downgrade(r.downgrade_rule),
        r.notice_days,
        [Rule(x["tier_id"], x["upgrade"], x["keep"]) for x in r.rules],
        r.note,
        r.create_time,
    )


async def insert_version(tx: Transaction, p: Programme) -> None:
    try:
        await tx.execute(
            insert(tier_programme_versions).values(
                version_id=p.version_id,
                effective_from=p.effective_from,
                measure=p.measure.value,
                window=p.window.value,
                window_days=p.window_days,
                term_months=p.term_months,
                grace_days=p.grace_days,
                downgrade_rule=p.downgrade.value,
                notice_days=p.notice_days,
                rules=[{"tier_id": r.tier_id, "upgrade": r.upgrade, "keep": r.keep} for r in p.rules],
                note=p.note,
                create_time=p.create_time,
            )
        )
    except IntegrityError as error:
        if violated_unique(error, "tier_programme_versions", "effective_from"):
            raise version_exists(p.effective_from) from None
        raise


async def versions(tx: Transaction, before: date | None = None, limit: int | None = None) -> list[Programme]:
    """The versions, the latest effective_from first; those before a day."""
    query = select(tier_programme_versions).order_by(tier_programme_versions.c.effective_from.desc()).limit(limit)
    if before is not None:
        query = query.where(tier_programme_versions.c.effective_from < before)
    return [_to_programme(r) for r in await tx.execute(query)]


async def any_version(tx: Transaction) -> bool:
    return (await tx.execute(select(tier_programme_versions.c.version_id).limit(1))).first() is not None


async def in_force(tx: Transaction, day: date) -> Programme | None:
    """The version in force on a business day."""
    row = (
        await tx.execute(
            select(tier_programme_versions)
            .where(tier_programme_versions.c.effective_from <= day)
            .order_by(tier_programme_versions.c.effective_from.desc())
            .limit(1)
        )
    ).one_or_none()
    return _to_programme(row) if row else None


async def ranks_and_names(tx: Transaction) -> tuple[dict[str, int], dict[str, str]]:
    rows = (await tx.execute(select(tiers.c.tier_id, tiers.c.rank, tiers.c.name))).all()
    return {r.tier_id: r.rank for r in rows}, {r.tier_id: r.name for r in rows}


# --- Measures ------------------------------------------------------------------------


async def measures(
    tx: Transaction,
    p: Programme,
    member_ids: list[str],
    start: datetime | None,
    end: datetime,
    span: Span | None = None,
) -> dict[str, int]:
    """The programme's measure of each member, counted from start to end (UTC moments
    of the window's business days); 0 for those with none."""
    out = dict.fromkeys(member_ids, 0)
    if not member_ids:
        return out
    if p.measure in (Measure.SPEND, Measure.VISITS):
        of, params = _of(visits.c.member_id, member_ids, span)
        in_window = and_(of, visits.c.visit_time < end)
        if start is not None:
            in_window = and_(in_window, visits.c.visit_time >= start)
        counted = func.count() if p.measure == Measure.VISITS else func.sum(visits.c.amount_fen)
        query = select(visits.c.member_id, counted).where(in_window).group_by(visits.c.member_id)
        for member_id, total in await tx.execute(query, params):
            if member_id in out:
                out[member_id] = int(total or 0)
        if p.measure == Measure.SPEND:  # returns of the window's visits taken off
            # the returns of the batch's members only, by their own member_id: joined on
            # the order alone, every return was hashed at each batch
            of_returns, _ = _of(visit_returns.c.member_id, member_ids, span)
            returned = (
                select(visits.c.member_id, func.sum(visit_returns.c.amount_fen))
                .join(visits, visits.c.order_id == visit_returns.c.order_id)
                .where(in_window, of_returns)
                .group_by(visits.c.member_id)
            )
            for member_id, total in await tx.execute(returned, params):
                if member_id in out:
                    out[member_id] -= int(total or 0)
    elif p.measure == Measure.TOP_UPS:
        of, params = _of(top_ups.c.member_id, member_ids, span)
        where = and_(of, top_ups.c.refund_time.is_(None), top_ups.c.top_up_time < end)
        if start is not None:
            where = and_(where, top_ups.c.top_up_time >= start)
        query = select(top_ups.c.member_id, func.sum(top_ups.c.amount_fen)).where(where).group_by(top_ups.c.member_id)
        for member_id, total in await tx.execute(query, params):
            if member_id in out:
                out[member_id] = int(total or 0)
    elif p.measure == Measure.VALUE_SCORE:
        out.update(await latest_scores(tx, member_ids))
    return out


async def latest_scores(tx: Transaction, member_ids: list[str]) -> dict[str, int]:
    latest = (
        select(value_scores.c.member_id, func.max(value_scores.c.month).label("month"))
        .where(value_scores.c.member_id.in_(bindparam("ids", expanding=True)))
        .group_by(value_scores.c.member_id)
        .subquery()
    )
    query = select(value_scores.c.member_id, value_scores.c.score).join(
        latest, and_(latest.c.member_id == value_scores.c.member_id, latest.c.month == value_scores.c.month)
    )
    return {r.member_id: r.score for r in await tx.execute(query, {"ids": member_ids})}


# --- Terms ---------------------------------------------------------------------------


def _to_term(r) -> Term | None:
    if r.t_member_id is None:
        return None
    return Term(r.t_tier_id, r.term_end, r.evaluated_on, r.floor_tier_id, r.floor_end)


_TERM_COLUMNS = [
    member_tier_terms.c.member_id.label("t_member_id"),
    member_tier_terms.c.tier_id.label("t_tier_id"),
    member_tier_terms.c.term_end,
    member_tier_terms.c.evaluated_on,
    member_tier_terms.c.floor_tier_id,
    member_tier_terms.c.floor_end,
]


async def term_of(tx: Transaction, member_id: str) -> Term | None:
    row = (await tx.execute(select(*_TERM_COLUMNS).where(member_tier_terms.c.member_id == member_id))).one_or_none()
    return _to_term(row) if row else None


_SAVE_TERMS = text(
    "INSERT INTO member_tier_terms (member_id, tier_id, term_end, evaluated_on, floor_tier_id, floor_end) "
    "SELECT u.member_id, u.tier_id, u.term_end, u.evaluated_on, u.floor_tier_id, u.floor_end "
    "FROM json_to_recordset(CAST(:batch AS json)) AS u(member_id varchar, tier_id varchar, term_end date, "
    "evaluated_on date, floor_tier_id varchar, floor_end date) "
    "ON CONFLICT (member_id) DO UPDATE SET tier_id = excluded.tier_id, term_end = excluded.term_end, "
    "evaluated_on = excluded.evaluated_on, floor_tier_id = excluded.floor_tier_id, floor_end = excluded.floor_end"
)


async def save_terms(tx: Transaction, rows: list[dict]) -> None:
    """Upsert terms: dicts of member_id, tier_id, term_end, evaluated_on, floor_tier_id,
    floor_end (all of them)."""
    if not rows:
        return
    if dialect_name(tx) == "postgresql":  # one statement for the batch: arrays, unnested
        await tx.execute(_SAVE_TERMS, {"batch": json.dumps(rows, default=date.isoformat)})
        return
    upsert = insert_for(tx)(member_tier_terms)
    statement = upsert.on_conflict_do_update(
        index_elements=["member_id"],
        set_={
            c: getattr(upsert.excluded, c)
            for c in ["tier_id", "term_end", "evaluated_on", "floor_tier_id", "floor_end"]
        },
    )
    await tx.execute(statement, rows)


async def span_after(tx: Transaction, after: str, limit: int) -> Span | None:
    """The span of the next `limit` members by id after `after` (None: none is left)."""
    ids = (
        select(members.c.member_id)
        .where(members.c.member_id > after)
        .order_by(members.c.member_id)
        .limit(limit)
        .subquery()
    )
    count, last = (await tx.execute(select(func.count(), func.max(ids.c.member_id)))).one()
    return (after, last, count) if count else None


async def due_in(tx: Transaction, p: Programme, day: date, span: Span) -> list[tuple[str, str, str, Term | None]]:
    """The members of a span whose term the re-evaluation of day decides: (member_id,
    tier_id, home_store_path, term), by id. Due: a term ended by day and not decided
    on day yet; a programme tier without a term of it (the programme's start); with the
    value score, every member (a score may lift them)."""
    # the terms of the span only, by their key: a join on the member alone read every
    # term at each batch (a scan of them all, as many times as there are batches)
    t = member_tier_terms.c
    joined = members.outerjoin(
        member_tier_terms, and_(t.member_id == members.c.member_id, t.member_id > span[0], t.member_id <= span[1])
    )
    query = (
        select(members.c.member_id, members.c.tier_id, members.c.home_store_path, *_TERM_COLUMNS)
        .select_from(joined)
        .where(members.c.member_id > span[0], members.c.member_id <= span[1])
        .order_by(members.c.member_id)
    )
    if p.measure != Measure.VALUE_SCORE:
        ended = and_(
            member_tier_terms.c.term_end <= day,
            or_(member_tier_terms.c.evaluated_on.is_(None), member_tier_terms.c.evaluated_on < day),
        )
        without = and_(
            members.c.tier_id.in_([r.tier_id for r in p.rules]),
            or_(
                member_tier_terms.c.member_id.is_(None),
                member_tier_terms.c.term_end.is_(None),
                member_tier_terms.c.tier_id != members.c.tier_id,
            ),
        )
        query = query.where(or_(ended, without))
    return [(r.member_id, r.tier_id or "", r.home_store_path, _to_term(r)) for r in await tx.execute(query)]


async def at_risk_batch(
    tx: Transaction, p: Programme, latest_term_end: date, org_path: str, after: str, limit: int
) -> list[tuple[str, str, Term]]:
    """Members on a programme tier under org_path whose term ends by latest_term_end,
    after the member id `after`: (member_id, tier_id, term)."""
    query = (
        select(members.c.member_id, members.c.tier_id, *_TERM_COLUMNS)
        .select_from(members.join(member_tier_terms, member_tier_terms.c.member_id == members.c.member_id))
        .where(
            members.c.member_id > after,
            members.c.tier_id.in_([r.tier_id for r in p.rules]),
            member_tier_terms.c.tier_id == members.c.tier_id,
            member_tier_terms.c.term_end <= latest_term_end,
            or_(members.c.home_store_path == org_path, members.c.home_store_path.startswith(org_path + "/")),
        )
        .order_by(members.c.member_id)
        .limit(limit)
    )
    out = []
    for r in await tx.execute(query):
        term = _to_term(r)
        assert term is not None
        out.append((r.member_id, r.tier_id, term))
    return out


async def move_many(tx: Transaction, moves: list[tuple[TierChange, str]]) -> None:
    """Members moved (their change, their home store), the changes kept and counted in
    the rollups: one statement per table for the whole batch."""
    if not moves:
        return
    if dialect_name(tx) == "postgresql":  # one statement per table for the batch
        batch = json.dumps(
            [
                {
                    "member_id": c.member_id,
                    "from_tier_id": c.from_tier_id,
                    "to_tier_id": c.to_tier_id,
                    "reason": c.reason,
                    "operator_id": c.operator_id,
                    "change_time": c.change_time.isoformat(),
                    "home_store_path": home,
                }
                for c, home in moves
            ]
        )
        await tx.execute(_MOVE_MEMBERS, {"batch": batch})
        await tx.execute(_KEEP_CHANGES, {"batch": batch})
    else:
        await _move_one_by_one(tx, moves)
    contributions = []
    for c, home in moves:
        contributions += reports.tier_moved(
            reports.TierMove(c.member_id, home, c.from_tier_id, c.to_tier_id, c.change_time)
        )
    await record(tx, contributions)


_MOVES = (
    "json_to_recordset(CAST(:batch AS json)) AS u(member_id varchar, from_tier_id varchar, to_tier_id varchar, "
    "reason varchar, operator_id varchar, change_time timestamptz, home_store_path varchar)"
)
_MOVE_MEMBERS = text(
    "UPDATE members SET tier_id = NULLIF(u.to_tier_id, ''), update_time = u.change_time "
    f"FROM {_MOVES} WHERE members.member_id = u.member_id"
)
_KEEP_CHANGES = text(
    "INSERT INTO tier_changes (member_id, from_tier_id, to_tier_id, reason, operator_id, change_time, home_store_path) "
    "SELECT u.member_id, NULLIF(u.from_tier_id, ''), u.to_tier_id, u.reason, u.operator_id, u.change_time, "
    f"u.home_store_path FROM {_MOVES}"
)


async def _move_one_by_one(tx: Transaction, moves: list[tuple[TierChange, str]]) -> None:
    """As move_many, on SQLite (no arrays): a statement per row, in one executemany."""
    await tx.execute(
        update(members)
        .where(members.c.member_id == bindparam("of_member"))
        .values(tier_id=bindparam("to_tier"), update_time=bindparam("at")),
        [{"of_member": c.member_id, "to_tier": c.to_tier_id or None, "at": c.change_time} for c, _ in moves],
    )
    await tx.execute(
        insert(tier_changes),
        [
            {
                "member_id": c.member_id,
                "from_tier_id": c.from_tier_id or None,
                "to_tier_id": c.to_tier_id,
                "reason": c.reason,
                "operator_id": c.operator_id,
                "change_time": c.change_time,
                "home_store_path": home,
            }
            for c, home in moves
        ],
    )


# --- Job runs ------------------------------------------------------------------------


async def job_run(tx: Transaction, job: str, key: str) -> tuple[str, bool, dict]:
    """(cursor, done, counts) of a job's run; ("", False, {}) before it starts."""
    row = (
        await tx.execute(
            select(loyalty_job_runs).where(loyalty_job_runs.c.job == job, loyalty_job_runs.c.run_key == key)
        )
    ).one_or_none()
    return (row.cursor, row.done, dict(row.counts)) if row else ("", False, {})


async def save_job_run(tx: Transaction, job: str, key: str, cursor: str, done: bool, counts: dict, now) -> None:
    upsert = insert_for(tx)(loyalty_job_runs).values(
        job=job, run_key=key, cursor=cursor, done=done, counts=counts, update_time=now
    )
    await tx.execute(
        upsert.on_conflict_do_update(
            index_elements=["job", "run_key"],
            set_={"cursor": cursor, "done": done, "counts": counts, "update_time": now},
        )
    )


# --- Value scores --------------------------------------------------------------------


async def current_weights(tx: Transaction) -> tuple[dict[str, int], datetime | None]:
    row = (
        await tx.execute(select(value_score_weights).order_by(value_score_weights.c.weights_id.desc()).limit(1))
    ).one_or_none()
    if row is None:
        return {}, None
    return {c: getattr(row, f"{c}_bp") for c in COMPONENTS}, row.update_time


async def set_weights(tx: Transaction, weights: dict[str, int], now: datetime) -> None:
    await tx.execute(insert(value_score_weights).values(update_time=now, **{f"{c}_bp": w for c, w in weights.items()}))


async def member_ids_after(
    tx: Transaction, after: str, limit: int, registered_before: datetime
) -> list[tuple[str, bool]]:
    """The next members by id after `after`, each with whether they registered before
    a moment (a month is scored for the members it had)."""
    query = (
        select(members.c.member_id, members.c.create_time)
        .where(members.c.member_id > after)
        .order_by(members.c.member_id)
        .limit(limit)
    )
    return [(r.member_id, r.create_time < registered_before) for r in await tx.execute(query)]


async def scored_in(tx: Transaction, month: date, member_ids: list[str], span: Span | None = None) -> set[str]:
    of, params = _of(value_scores.c.member_id, member_ids, span)
    query = select(value_scores.c.member_id).where(value_scores.c.month == month, of)
    return set((await tx.execute(query, params)).scalars())


async def score_inputs(
    tx: Transaction, member_ids: list[str], start: datetime, end: datetime, span: Span | None = None
) -> dict[str, tuple[Inputs, datetime, datetime | None]]:
    """What the value score counts of each member from start to end, with their
    registration and last visit (for the day counts the use case makes in business
    time): one read per kind of fact for the whole batch."""
    if not member_ids:
        return {}
    of_visits, params = _of(visits.c.member_id, member_ids, span)
    of_contacts, _ = _of(care_contacts.c.member_id, member_ids, span)
    of_members, _ = _of(members.c.member_id, member_ids, span)
    of_returns, _ = _of(visit_returns.c.member_id, member_ids, span)
    wanted = set(member_ids)
    in_window = and_(of_visits, visits.c.visit_time >= start, visits.c.visit_time < end)
    seen = {
        r.member_id: r
        for r in await tx.execute(
            select(
                visits.c.member_id,
                func.count().label("n"),
                func.sum(visits.c.amount_fen).label("spend"),
                func.max(visits.c.visit_time).label("last"),
            )
            .where(in_window)
            .group_by(visits.c.member_id),
            params,
        )
    }
    returned = dict(
        (
            await tx.execute(
                select(visits.c.member_id, func.sum(visit_returns.c.amount_fen))
                .join(visits, visits.c.order_id == visit_returns.c.order_id)
                .where(in_window, of_returns)
                .group_by(visits.c.member_id),
                params,
            )
        ).all()
    )
    contacted = set(
        (
            await tx.execute(
                select(care_contacts.c.member_id)
                .where(
                    of_contacts,
                    care_contacts.c.contact_time >= start,
                    care_contacts.c.contact_time < end,
                )
                .distinct(),
                params,
            )
        ).scalars()
    )
    out = {}
    profile = select(
        members.c.member_id, members.c.create_time, members.c.marketing_consent, members.c.birthday, members.c.gender
    ).where(of_members)
    for m in await tx.execute(profile, params):
        if m.member_id not in wanted:
            continue
        s = seen.get(m.member_id)
        inputs = Inputs(
            days_since_visit=None,  # the use case counts it in business days
            visits=int(s.n) if s else 0,
            spend_fen=(int(s.spend or 0) if s else 0) - int(returned.get(m.member_id) or 0),
            tenure_months=0,  # likewise
            consent=bool(m.marketing_consent),
            birthday=bool(m.birthday),
            gender=m.gender in ("FEMALE", "MALE"),
            care_contact=m.member_id in contacted,
        )
        out[m.member_id] = (inputs, m.create_time, s.last if s else None)
    return out


def _score_row(s: Score, now: datetime) -> dict:
    return {
        "member_id": s.member_id,
        "month": s.month,
        "score": s.score,
        "inputs": s.inputs.as_dict(),
        "raw": s.raw,
        "weights": s.weights,
        "compute_time": now,
    }


# The batch goes as one JSON document (json_to_recordset): one parameter, where arrays
# of JSON texts cost the driver an escaping pass per element.
_INSERT_SCORES = (
    "INSERT INTO value_scores (member_id, month, score, inputs, raw, weights, compute_time) "
    "SELECT u.member_id, u.month, u.score, u.inputs, u.raw, u.weights, :now FROM json_to_recordset(CAST(:batch AS json)) "
    "AS u(member_id varchar, month date, score int, inputs json, raw json, weights json) "
)
_SAVE_SCORES = text(_INSERT_SCORES + "ON CONFLICT (member_id, month) DO NOTHING")
_SAVE_SCORES_REPLACING = text(
    _INSERT_SCORES + "ON CONFLICT (member_id, month) DO UPDATE SET score = excluded.score, inputs = excluded.inputs, "
    "raw = excluded.raw, weights = excluded.weights, compute_time = excluded.compute_time"
)


async def save_scores(tx: Transaction, scores: list[Score], now: datetime, replace: bool) -> None:
    """Scores kept; a month scored already is kept as it is, unless replace."""
    if not scores:
        return
    if dialect_name(tx) == "postgresql":  # one statement for the batch: arrays, unnested
        await tx.execute(
            _SAVE_SCORES_REPLACING if replace else _SAVE_SCORES,
            {
                "batch": json.dumps(
                    [
                        {
                            "member_id": x.member_id,
                            "month": x.month.isoformat(),
                            "score": x.score,
                            "inputs": x.inputs.as_dict(),
                            "raw": x.raw,
                            "weights": x.weights,
                        }
                        for x in scores
                    ]
                ),
                "now": now,
            },
        )
        return
    upsert = insert_for(tx)(value_scores)
    if replace:
        statement = upsert.on_conflict_do_update(
            index_elements=["member_id", "month"],
            set_={c: getattr(upsert.excluded, c) for c in ["score", "inputs", "raw", "weights", "compute_time"]},
        )
    else:
        statement = upsert.on_conflict_do_nothing(index_elements=["member_id", "month"])
    await tx.execute(statement, [_score_row(s, now) for s in scores])


def _to_score(r) -> tuple[Score, datetime]:
    return Score(r.member_id, r.month, r.score, Inputs(**r.inputs), dict(r.raw), dict(r.weights)), r.compute_time


async def scores_of(tx: Transaction, member_id: str, before: date | None, limit: int) -> list[tuple[Score, datetime]]:
    """The member's scores, the latest month first; those before a month."""
    query = select(value_scores).where(value_scores.c.member_id == member_id)
    if before is not None:
        query = query.where(value_scores.c.month < before)
    return [_to_score(r) for r in await tx.execute(query.order_by(value_scores.c.month.desc()).limit(limit))]


def dialect_of(tx: Transaction) -> str:
    return dialect_name(tx)


# --- Value scores, set-based (PostgreSQL) ---------------------------------------------
#
# The monthly run scores a span of members with one statement: what score_inputs reads,
# counted in SQL, scored by the same rule as value_score.raw_of (its constants, taken
# from the domain module: tests/test_loyalty.py holds the two to the same scores), and
# kept with ON CONFLICT DO NOTHING (a member scored for the month already stays as they
# are). No member's row crosses into Python: at 1,000,000 members the per-member
# Python (rows read, Inputs built, JSON written back) was most of the run.


@functools.cache
def _score_statement():
    return text(_score_sql())


def _score_sql() -> str:
    d = vs
    engagement = " + ".join(f"CASE WHEN i.{key} THEN {points} ELSE 0 END" for key, points in d.ENGAGEMENT.items())
    raw = {
        "recency": (
            f"CASE WHEN i.days_since_visit IS NULL OR i.days_since_visit >= {d.FORGOTTEN_DAYS} THEN 0 "
            f"WHEN i.days_since_visit <= {d.RECENT_DAYS} THEN 1000 "
            f"ELSE 1000 * ({d.FORGOTTEN_DAYS} - i.days_since_visit) / {d.FORGOTTEN_DAYS - d.RECENT_DAYS} END"
        ),
        "frequency": f"LEAST(GREATEST(i.visits, 0), {d.FULL_VISITS}) * 1000 / {d.FULL_VISITS}",
        "spend": f"LEAST(GREATEST(i.spend_fen, 0), {d.FULL_SPEND_FEN}) * 1000 / {d.FULL_SPEND_FEN}",
        "tenure": f"LEAST(GREATEST(i.tenure_months, 0), {d.FULL_TENURE_MONTHS}) * 1000 / {d.FULL_TENURE_MONTHS}",
        "engagement": f"LEAST({engagement}, 1000)",
    }
    raw_columns = ", ".join(f"({expr})::int AS {c}" for c, expr in raw.items())
    points = " + ".join(f"r.{c} * CAST(:w_{c} AS int) / 10000" for c in COMPONENTS)
    inputs_json = ", ".join(f"'{k}', r.{k}" for k in vs.INPUT_NAMES)
    raw_json = ", ".join(f"'{c}', r.{c}" for c in COMPONENTS)
    in_span = "{0}.member_id > :after AND {0}.member_id <= :upto"
    return (
        "WITH b AS (SELECT member_id, create_time, marketing_consent, birthday, gender FROM members m "
        f"WHERE {in_span.format('m')} AND m.create_time < :registered_before), "
        "v AS (SELECT v.member_id, count(*) AS n, sum(v.amount_fen) AS spend, max(v.visit_time) AS last FROM visits v "
        f"WHERE {in_span.format('v')} AND v.visit_time >= :start AND v.visit_time < :end GROUP BY v.member_id), "
        "rt AS (SELECT v.member_id, sum(x.amount_fen) AS returned FROM visit_returns x "
        "JOIN visits v ON v.order_id = x.order_id "
        f"WHERE {in_span.format('x')} AND {in_span.format('v')} AND v.visit_time >= :start AND v.visit_time < :end "
        "GROUP BY v.member_id), "
        "c AS (SELECT DISTINCT c.member_id FROM care_contacts c "
        f"WHERE {in_span.format('c')} AND c.contact_time >= :start AND c.contact_time < :end), "
        "i AS (SELECT b.member_id, "
        "CAST(:as_of AS date) - (v.last AT TIME ZONE :zone)::date AS days_since_visit, "
        "COALESCE(v.n, 0)::int AS visits, (COALESCE(v.spend, 0) - COALESCE(rt.returned, 0))::bigint AS spend_fen, "
        "GREATEST(0, (CAST(:end_year AS int) - extract(year FROM b.local_reg)::int) * 12 "
        "+ CAST(:end_month AS int) - extract(month FROM b.local_reg)::int "
        "- CASE WHEN CAST(:end_day AS int) < extract(day FROM b.local_reg)::int THEN 1 ELSE 0 END) AS tenure_months, "
        "b.marketing_consent AS consent, COALESCE(b.birthday, '') <> '' AS birthday, "
        "b.gender IN ('FEMALE', 'MALE') AS gender, c.member_id IS NOT NULL AS care_contact "
        "FROM (SELECT b.*, (b.create_time AT TIME ZONE :zone)::date AS local_reg FROM b) b "
        "LEFT JOIN v ON v.member_id = b.member_id LEFT JOIN rt ON rt.member_id = b.member_id "
        "LEFT JOIN c ON c.member_id = b.member_id), "
        f"r AS (SELECT i.*, {raw_columns} FROM i), "
        "kept AS (INSERT INTO value_scores (member_id, month, score, inputs, raw, weights, compute_time) "
        f"SELECT r.member_id, :month, {points}, json_build_object({inputs_json}), json_build_object({raw_json}), "
        "CAST(:weights AS json), :now FROM r ON CONFLICT (member_id, month) DO NOTHING RETURNING 1) "
        "SELECT count(*) FROM kept"
    )


async def score_span(
    tx: Transaction,
    span: Span,
    month: date,
    start: datetime,
    end: datetime,
    as_of: date,
    end_day: date,
    weights: dict[str, int],
    now: datetime,
) -> int:
    """Score the members of a span registered before `end` and not scored for the
    month yet, counted from start to end: how many were scored (PostgreSQL)."""
    found = await tx.execute(
        _score_statement(),
        {
            "after": span[0],
            "upto": span[1],
            "registered_before": end,
            "start": start,
            "end": end,
            "as_of": as_of,
            "zone": CHAIN_ZONE.key,
            "end_year": end_day.year,
            "end_month": end_day.month,
            "end_day": end_day.day,
            "month": month,
            "weights": json.dumps(weights),
            "now": now,
            **{f"w_{c}": weights[c] for c in COMPONENTS},
        },
    )
    return int(found.scalar_one())
