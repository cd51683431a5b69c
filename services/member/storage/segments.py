"""Automatic tags and saved segments: the rules and segments kept, the runs' cursors,
the SQL each rule kind and segment criterion means, and the members' automatic tags
(member_auto_tags, mirrored in members.automatic_tags).

A rule's run goes through the members by id in batches: each batch covers an id range
(the one after the cursor, up to the batch's last id; the last batch runs to the end),
asks which members of the range the rule selects and which carry its tag, and writes
the difference. The ranges cover every id, so a member who left the node is found in
the range holding its id."""

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, insert, literal, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql import ColumnElement, Select

from huiyuan.database import Transaction, dialect_name, insert_for, under
from huiyuan.runtime.business_time import day_start
from services.member.domain import segments as rules
from services.member.domain.segments import Criteria, RuleKind, Segment, TagRule, Window
from services.member.storage.members import _where as query_where
from services.member.storage.summaries import _local_day
from services.member.storage.tables import (
    member_auto_tags,
    members,
    membership_terms,
    segments,
    tag_rules,
    tag_runs,
    value_scores,
    visit_returns,
    visit_stats,
    visits,
)

m = members.c


# --- rules and segments --------------------------------------------------------------


def to_rule(row) -> TagRule:
    return TagRule(
        rule_id=row.rule_id,
        org_path=row.org_path,
        tag=row.tag,
        kind=RuleKind(row.kind),
        params=dict(row.params or {}),
        create_time=row.create_time,
        segment_id=row.segment_id,
        live=row.live,
        revision=row.revision,
        member_count=row.member_count,
        last_run_time=row.last_run_time,
    )


async def insert_rule(tx: Transaction, rule: TagRule) -> None:
    await tx.execute(
        insert(tag_rules).values(
            rule_id=rule.rule_id,
            org_path=rule.org_path,
            tag=rule.tag,
            kind=rule.kind.value,
            params=rule.params,
            segment_id=rule.segment_id,
            live=True,
            revision=1,
            member_count=0,
            create_time=rule.create_time,
        )
    )


async def get_rule(tx: Transaction, rule_id: str) -> TagRule | None:
    row = (await tx.execute(select(tag_rules).where(tag_rules.c.rule_id == rule_id))).one_or_none()
    return to_rule(row) if row else None


async def live_rule_with_tag(tx: Transaction, tag: str) -> TagRule | None:
    row = (
        await tx.execute(select(tag_rules).where(tag_rules.c.tag == tag, tag_rules.c.live.is_(True)).limit(1))
    ).one_or_none()
    return to_rule(row) if row else None


async def rules_after(tx: Transaction, org_path: str, after_id: str | None, limit: int) -> list[TagRule]:
    statement = select(tag_rules).where(tag_rules.c.live.is_(True))
    if org_path:
        statement = statement.where(under(tag_rules.c.org_path, org_path))
    if after_id is not None:
        statement = statement.where(tag_rules.c.rule_id > after_id)
    rows = await tx.execute(statement.order_by(tag_rules.c.rule_id).limit(limit))
    return [to_rule(r) for r in rows]


async def rules_to_run(tx: Transaction) -> list[TagRule]:
    """The live rules, and the deleted ones whose tag some member still carries."""
    carried = exists().where(member_auto_tags.c.rule_id == tag_rules.c.rule_id)
    rows = await tx.execute(
        select(tag_rules).where(or_(tag_rules.c.live.is_(True), carried)).order_by(tag_rules.c.rule_id)
    )
    return [to_rule(r) for r in rows]


async def end_rule(tx: Transaction, rule_id: str) -> None:
    """Deleted: a new revision, whose run takes its tag off every member."""
    await tx.execute(
        update(tag_rules).where(tag_rules.c.rule_id == rule_id).values(live=False, revision=tag_rules.c.revision + 1)
    )


async def next_revision(tx: Transaction, rule_id: str) -> None:
    """The rule's selection changed (its segment did): today's run starts again."""
    await tx.execute(update(tag_rules).where(tag_rules.c.rule_id == rule_id).values(revision=tag_rules.c.revision + 1))


def to_segment(row) -> Segment:
    return Segment(
        row.segment_id,
        row.org_path,
        row.name,
        dict(row.criteria),
        row.tag,
        row.rule_id,
        row.create_time,
        row.update_time,
        row.delete_time,
    )


def _segment_values(s: Segment) -> dict:
    return {
        "segment_id": s.segment_id,
        "org_path": s.org_path,
        "name": s.name,
        "criteria": s.criteria,
        "tag": s.tag,
        "rule_id": s.rule_id,
        "create_time": s.create_time,
        "update_time": s.update_time,
        "delete_time": s.delete_time,
    }


async def insert_segment(tx: Transaction, segment: Segment) -> None:
    await tx.execute(insert(segments).values(**_segment_values(segment)))


async def update_segment(tx: Transaction, segment: Segment) -> None:
    values = _segment_values(segment)
    del values["segment_id"], values["create_time"]
    await tx.execute(update(segments).where(segments.c.segment_id == segment.segment_id).values(**values))


async def delete_segment(tx: Transaction, segment_id: str, now: datetime) -> None:
    await tx.execute(update(segments).where(segments.c.segment_id == segment_id).values(delete_time=now))


async def get_segment(tx: Transaction, segment_id: str, *, for_update: bool = False) -> Segment | None:
    statement = select(segments).where(segments.c.segment_id == segment_id)
    row = (await tx.execute(statement.with_for_update() if for_update else statement)).one_or_none()
    return to_segment(row) if row else None


async def segments_after(tx: Transaction, org_path: str, after_id: str | None, limit: int) -> list[Segment]:
    statement = select(segments).where(segments.c.delete_time.is_(None))
    if org_path:
        statement = statement.where(under(segments.c.org_path, org_path))
    if after_id is not None:
        statement = statement.where(segments.c.segment_id > after_id)
    return [to_segment(r) for r in await tx.execute(statement.order_by(segments.c.segment_id).limit(limit))]


# --- what members spent and visited in a window --------------------------------------


Bounds = tuple[str, str | None] | None  # a batch's ids: after, up to (None: no end)


def _window_counts(since: datetime, bounds: Bounds = None) -> Select:
    """Per member with a visit since `since`: visits and spend (less the returns of
    those visits). The returns are summed per member over the same visits, so that only
    the returns of the window's (and the batch's) visits are read."""
    v, x = visits.c, visit_returns.c
    window = [v.visit_time >= since] + ([id_range(v.member_id, *bounds)] if bounds is not None else [])
    counted = (
        select(v.member_id, func.count().label("n"), func.sum(v.amount_fen).label("gross"))
        .where(*window)
        .group_by(v.member_id)
        .subquery("counted")
    )
    # the batch's returns by their own member_id (migration 0012): joined on the order alone, every
    # return of the chain was hashed at each batch
    of_returns = [id_range(x.member_id, *bounds)] if bounds is not None else []
    returned = (
        select(v.member_id, func.sum(x.amount_fen).label("returned"))
        .select_from(visit_returns.join(visits, v.order_id == x.order_id))
        .where(*window, *of_returns)
        .group_by(v.member_id)
        .subquery("returned")
    )
    return select(
        counted.c.member_id,
        counted.c.n,
        (counted.c.gross - func.coalesce(returned.c.returned, 0)).label("spend"),
    ).select_from(counted.outerjoin(returned, returned.c.member_id == counted.c.member_id))


def _visit_count_since(since: datetime):
    return (
        select(func.count())
        .select_from(visits)
        .where(visits.c.member_id == m.member_id, visits.c.visit_time >= since)
        .scalar_subquery()
    )


def _window_condition(window: Window, day: date, spend: bool, bounds: Bounds = None) -> ColumnElement[bool]:
    """Members whose visits (or spend) in the window lie between window.low and
    window.high (0: no bound); with low 0 those without a visit count too."""
    since = rules.window_start(day, window.window_days)
    counts = _window_counts(since, bounds).subquery()
    measure = counts.c.spend if spend else counts.c.n
    bounded = [measure >= window.low] + ([measure <= window.high] if window.high else [])
    picked = select(counts.c.member_id).where(*bounded)
    if window.low > 0:
        return m.member_id.in_(picked)
    if not window.high:
        return literal(True)  # type: ignore[return-value]
    # 0 to high: those above high are the ones left out
    above = select(counts.c.member_id).where(measure > window.high)
    return ~m.member_id.in_(above)


def _dormant(day: date, days: int, bounds: Bounds = None) -> ColumnElement[bool]:
    since = rules.window_start(day, days)
    seen = [visit_stats.c.member_id == m.member_id, visit_stats.c.last_visit_time >= since]
    if bounds is not None:  # the batch's statistics only, not every member's at each batch
        seen.append(id_range(visit_stats.c.member_id, *bounds))
    return and_(m.create_time < since, ~exists().where(*seen))


def _birthday_month(month: str) -> ColumnElement[bool]:
    return func.substr(m.birthday, 6, 2) == month


def _paid_member(day: date, plan_id: str) -> ColumnElement[bool]:
    """A paid term (a trial too) of the plan (any: "") runs on day: it started by day and
    ends after it (its end after a refund, if refunded)."""
    t = membership_terms.c
    running = [
        t.member_id == m.member_id,
        t.start_day <= day,
        func.coalesce(t.refund_end_day, t.end_day) > day,
    ]
    if plan_id:
        running.append(t.plan_id == plan_id)
    return exists().where(*running)


def _value_score_band(low: int, high: int, bounds: Bounds) -> ColumnElement[bool]:
    """The member's latest value score (the latest month scored, as a programme on the
    score counts it) is within low to high (high 0: no upper bound)."""
    s = value_scores.c
    later = value_scores.alias("later")
    latest = ~exists().where(later.c.member_id == s.member_id, later.c.month > s.month)
    band = [s.score >= low] + ([s.score <= high] if high else [])
    scored = select(s.member_id).where(latest, *band)
    if bounds is not None:
        scored = scored.where(id_range(s.member_id, *bounds))
    return m.member_id.in_(scored)


# --- RFM: the cuts of the scores over a node, and the members within a cell ----------


def _whole_chain(node: str) -> bool:
    """The root node: every member is under it, none is joined to find its home store."""
    return "/" not in node


def _rfm_per_member(node: str):
    s = visit_stats.c
    per = select(
        s.member_id,
        func.max(s.last_visit_time).label("last_time"),
        func.sum(s.visit_count).label("f"),
        func.sum(s.total_spend_fen).label("mon"),
    )
    if not _whole_chain(node):  # a node's members by their home store
        per = per.join(members, m.member_id == s.member_id).where(under(m.home_store_path, node))
    return per.group_by(s.member_id)


async def rfm_cuts(tx: Transaction, node: str, rfm: rules.Rfm, as_of: date) -> dict[str, Any]:
    """The values at the cuts of the scores an RFM range needs, over the visiting
    members of node (by home store) as SummarizeMembers scores them: per measure
    ('r' as 'YYYY-MM-DD' days, 'f', 'm'), score -> value. One statement: the members'
    figures once, each measure ranked, the values at the cut positions picked."""
    per = _rfm_per_member(node).cte("per")
    visiting = (await tx.execute(select(func.count()).select_from(per))).scalar_one()
    cuts: dict[str, Any] = {"r": {}, "f": {}, "m": {}}
    if not visiting:  # nobody has scores: the cell selects nobody whatever its bounds
        return cuts
    positions = rules.cut_positions(visiting)
    measures = {
        "r": (_local_day(tx, per.c.last_time, as_of), rfm.recency),
        "f": (per.c.f, rfm.frequency),
        "m": (per.c.mon, rfm.monetary),
    }
    wanted = {
        key: sorted({s for s in (scores.low, scores.high + 1) if 2 <= s <= rules.QUINTILES})
        for key, (_, scores) in measures.items()
    }
    columns = []
    for key, (column, _) in measures.items():
        if wanted[key]:
            columns += [column.label(key), func.row_number().over(order_by=column).label(f"{key}_at")]
    if not columns:
        return cuts
    ranked = select(*columns).cte("ranked")
    picks = []
    for key in measures:
        for s in wanted[key]:
            at = ranked.c[f"{key}_at"]
            picks.append(select(ranked.c[key]).where(at == positions[s]).scalar_subquery().label(f"{key}{s}"))
    row = (await tx.execute(select(*picks))).one()
    for key in measures:
        for s in wanted[key]:
            value = getattr(row, f"{key}{s}")
            cuts[key][str(s)] = None if value is None else (str(value)[:10] if key == "r" else int(value))
    return cuts


def _rfm_condition(node: str, rfm: rules.Rfm, cuts: dict[str, Any], bounds: Bounds = None) -> ColumnElement[bool]:
    per = _rfm_per_member(node)
    if bounds is not None:  # the batch's members on both sides, not every member at each batch
        per = per.where(id_range(visit_stats.c.member_id, *bounds))
        if not _whole_chain(node):
            per = per.where(id_range(m.member_id, *bounds))
    per_q = per.subquery("per")
    having = []
    for key, column, scores in (
        ("r", per_q.c.last_time, rfm.recency),
        ("f", per_q.c.f, rfm.frequency),
        ("m", per_q.c.mon, rfm.monetary),
    ):
        found = {int(s): v for s, v in cuts[key].items()}
        above, at_most = rules.value_range(found, scores)
        if key == "r":  # a day is above another when the visit is at or after the next day's start
            if above is not None:
                having.append(column >= day_start(date.fromisoformat(above) + timedelta(days=1)))
            if at_most is not None:
                having.append(column < day_start(date.fromisoformat(at_most) + timedelta(days=1)))
        else:
            if above is not None:
                having.append(column > above)
            if at_most is not None:
                having.append(column <= at_most)
    return m.member_id.in_(select(per_q.c.member_id).where(*having))


# --- spend rank ----------------------------------------------------------------------


async def spend_threshold(tx: Transaction, node: str, params: dict, day: date) -> int | None:
    """The least spend over the window that is among the top top_percent of the node's
    members (None: nobody spent)."""
    total = (await tx.execute(select(func.count()).where(under(m.home_store_path, node)))).scalar_one()
    take = rules.top_count(total, params["top_percent"])
    since = rules.window_start(day, params["window_days"])
    counts = _window_counts(since).subquery()
    spent = select(counts.c.spend).where(counts.c.spend > 0)
    if not _whole_chain(node):  # a node's members by their home store
        spent = spent.join(members, m.member_id == counts.c.member_id).where(under(m.home_store_path, node))
    spent = spent.subquery()
    if take == 0:
        return None
    value = (await tx.execute(select(spent.c.spend).order_by(spent.c.spend.desc()).offset(take - 1).limit(1))).scalar()
    if value is None:  # fewer spenders than the share: every one of them
        value = (await tx.execute(select(func.min(spent.c.spend)))).scalar()
    return int(value) if value is not None else None


# --- a rule's and a segment's selection ----------------------------------------------


async def fix_run(tx: Transaction, rule: TagRule, day: date, segment: Criteria | None) -> dict[str, Any]:
    """What a run fixes at its start and keeps to the end, resumed or not."""
    if rule.kind == RuleKind.SPEND_RANK:
        return {"spend_at_least": await spend_threshold(tx, rule.org_path, rule.params, day)}
    if rule.kind == RuleKind.RFM:
        return {"cuts": await rfm_cuts(tx, rule.org_path, rules.rfm_from_list(rule.params["rfm"]), day)}
    if rule.kind == RuleKind.SEGMENT and segment is not None and segment.rfm is not None:
        return {"cuts": await rfm_cuts(tx, rule.org_path, segment.rfm, day)}
    return {}


def rule_condition(
    rule: TagRule, fixed: dict, day: date, segment: Criteria | None, bounds: Bounds
) -> ColumnElement[bool]:
    """SQL: the members the rule selects on day (among those in id_range)."""
    if not rule.live:
        return literal(False)  # type: ignore[return-value]
    p = rule.params
    if rule.kind == RuleKind.SEGMENT:
        if segment is None:
            return literal(False)  # type: ignore[return-value]
        return segment_condition(segment, rule.org_path, day, fixed.get("cuts"), bounds)
    in_node = under(m.home_store_path, rule.org_path)
    if rule.kind == RuleKind.VISITS:
        window = Window(p["window_days"], p["min_visits"], p["max_visits"])
        return and_(in_node, _window_condition(window, day, spend=False, bounds=bounds))
    if rule.kind == RuleKind.DORMANT:
        return and_(in_node, _dormant(day, p["days"], bounds))
    if rule.kind == RuleKind.SPEND_RANK:
        threshold = fixed.get("spend_at_least")
        if threshold is None:
            return literal(False)  # type: ignore[return-value]
        return and_(in_node, _window_condition(Window(p["window_days"], threshold), day, spend=True, bounds=bounds))
    if rule.kind == RuleKind.RFM:
        return and_(in_node, _rfm_condition(rule.org_path, rules.rfm_from_list(p["rfm"]), fixed["cuts"], bounds))
    if rule.kind == RuleKind.BIRTHDAY_MONTH:
        return and_(in_node, _birthday_month(rules.birthday_month(p, day)))
    if rule.kind == RuleKind.PAID_MEMBER:
        return and_(in_node, _paid_member(day, p["plan_id"]))
    if rule.kind == RuleKind.VALUE_SCORE_BAND:
        return and_(in_node, _value_score_band(p["min_score"], p["max_score"], bounds))
    raise AssertionError(rule.kind)


def segment_condition(
    criteria: Criteria, owner: str, day: date, cuts: dict | None, bounds: Bounds = None
) -> ColumnElement[bool]:
    """SQL: the members a segment selects on day. cuts: rfm_cuts() of the owner (with
    criteria.rfm)."""
    conditions = [query_where(criteria.query)]
    if criteria.visits:
        conditions.append(_window_condition(criteria.visits, day, spend=False, bounds=bounds))
    if criteria.spend:
        conditions.append(_window_condition(criteria.spend, day, spend=True, bounds=bounds))
    if criteria.rfm and cuts is not None:
        conditions.append(_rfm_condition(owner, criteria.rfm, cuts, bounds))
    for tag in criteria.automatic_tags:
        conditions.append(m.member_id.in_(select(member_auto_tags.c.member_id).where(member_auto_tags.c.tag == tag)))
    if criteria.paid_member:
        conditions.append(_paid_member(day, ""))
    if criteria.value_score:
        conditions.append(_value_score_band(*criteria.value_score, bounds))
    return and_(*conditions)


async def count_selected(tx: Transaction, condition) -> int:
    return (await tx.execute(select(func.count()).select_from(members).where(condition))).scalar_one()


async def selected_ids(tx: Transaction, condition, before_id: str | None, limit: int) -> list[str]:
    statement = select(m.member_id).where(condition)
    if before_id is not None:
        statement = statement.where(m.member_id < before_id)
    return list((await tx.execute(statement.order_by(m.member_id.desc()).limit(limit))).scalars())


def selected_rows(condition):
    """The members selected, newest first (to stream)."""
    return select(members).where(condition).order_by(m.member_id.desc())


# --- a run's batches -----------------------------------------------------------------


def id_range(column, after: str, upto: str | None) -> ColumnElement[bool]:
    conditions = [column > after] if after else []
    if upto is not None:
        conditions.append(column <= upto)
    return and_(True, *conditions)


async def scan_upto(tx: Transaction, rule: TagRule, after: str, limit: int) -> str | None:
    """The last id the next batch covers (None: the batch runs to the end): `limit` of
    the node's members (by home store), or for a deleted rule of the members carrying
    it. A rule of the whole chain (its root node) covers every member: the ids are read
    from the primary key alone, no member's row."""
    if not rule.live:
        t = member_auto_tags.c
        statement = select(t.member_id).where(t.rule_id == rule.rule_id, id_range(t.member_id, after, None))
        order = t.member_id
    elif "/" not in rule.org_path:
        statement, order = select(m.member_id).where(id_range(m.member_id, after, None)), m.member_id
    else:
        statement = select(m.member_id).where(
            under(m.home_store_path, rule.org_path), id_range(m.member_id, after, None)
        )
        order = m.member_id
    return (await tx.execute(statement.order_by(order).offset(limit - 1).limit(1))).scalar()


async def batch_ids(tx: Transaction, condition, after: str, upto: str | None) -> set[str]:
    statement = select(m.member_id).where(condition, id_range(m.member_id, after, upto))
    return set((await tx.execute(statement)).scalars())


async def carrying_ids(tx: Transaction, rule_id: str, after: str, upto: str | None) -> set[str]:
    t = member_auto_tags.c
    statement = select(t.member_id).where(t.rule_id == rule_id, id_range(t.member_id, after, upto))
    return set((await tx.execute(statement)).scalars())


async def tag_members(tx: Transaction, rule: TagRule, add: set[str], remove: set[str]) -> None:
    """The rule's tag set on add and taken off remove, and those members'
    members.automatic_tags written anew."""
    t = member_auto_tags.c
    if remove:
        for chunk in _chunks(sorted(remove)):
            await tx.execute(member_auto_tags.delete().where(t.rule_id == rule.rule_id, t.member_id.in_(chunk)))
    if add:
        await tx.execute(
            insert(member_auto_tags), [{"rule_id": rule.rule_id, "member_id": i, "tag": rule.tag} for i in add]
        )
    changed = sorted(add | remove)
    for chunk in _chunks(changed):
        await tx.execute(
            update(members).where(m.member_id.in_(chunk)).values(automatic_tags=_carried_tags(dialect_name(tx)))
        )


def _carried_tags(dialect: str):
    """SQL: the JSON list of the tags a member carries by rule, in order (one statement
    writes a batch's members)."""
    t = member_auto_tags.c
    if dialect == "postgresql":
        agg = func.coalesce(func.json_agg(aggregate_order_by(t.tag, t.tag)), literal_column("'[]'::json"))
        return select(agg).where(t.member_id == m.member_id).correlate(members).scalar_subquery()
    ordered = select(t.tag).where(t.member_id == m.member_id).order_by(t.tag).correlate(members).subquery()
    return select(func.json_group_array(ordered.c.tag)).correlate(members).scalar_subquery()


def _chunks(ids: list[str], size: int = 1000):
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


async def rule_members(tx: Transaction, rule_id: str) -> int:
    return (
        await tx.execute(
            select(func.count()).select_from(member_auto_tags).where(member_auto_tags.c.rule_id == rule_id)
        )
    ).scalar_one()


async def finish_rule(tx: Transaction, rule_id: str, now: datetime) -> None:
    count = await rule_members(tx, rule_id)
    await tx.execute(
        update(tag_rules).where(tag_rules.c.rule_id == rule_id).values(member_count=count, last_run_time=now)
    )


# --- runs ----------------------------------------------------------------------------


def _run_key(rule: TagRule, day: date):
    r = tag_runs.c
    return and_(r.rule_id == rule.rule_id, r.run_day == day.isoformat(), r.revision == rule.revision)


async def get_run(tx: Transaction, rule: TagRule, day: date, *, for_update: bool = False):
    statement = select(tag_runs).where(_run_key(rule, day))
    return (await tx.execute(statement.with_for_update() if for_update else statement)).one_or_none()


async def start_run(tx: Transaction, rule: TagRule, day: date, fixed: dict) -> None:
    """The run's row, unless another run of the day wrote it first (then that one's
    thresholds hold)."""
    statement = insert_for(dialect_name(tx))(tag_runs).values(
        rule_id=rule.rule_id,
        run_day=day.isoformat(),
        revision=rule.revision,
        cursor="",
        fixed=fixed,
        done=False,
        added=0,
        removed=0,
    )
    await tx.execute(statement.on_conflict_do_nothing(index_elements=["rule_id", "run_day", "revision"]))


async def advance_run(tx: Transaction, rule: TagRule, day: date, cursor: str, done: bool, added: int, removed: int):
    await tx.execute(
        update(tag_runs)
        .where(_run_key(rule, day))
        .values(cursor=cursor, done=done, added=tag_runs.c.added + added, removed=tag_runs.c.removed + removed)
    )
