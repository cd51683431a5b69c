"""The shared runtime seen from outside: traces, and graceful shutdown of a real process."""

import asyncio
import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from huiyuan.common.v1 import file_pb2
from huiyuan.member.v1 import member_pb2
from tests.conftest import as_gateway
from tests.support import ACTOR, Stubs, ensure_org, new_phone, refusal, rid

ROOT = Path(__file__).resolve().parent.parent
LOOKUP = "huiyuan.member.v1.MemberService/LookupMember"


@pytest.fixture(scope="module")
def stubs(member_service):
    stubs = Stubs(member_service.channel)
    ensure_org(stubs)
    return stubs


def _traced_call(call, request):
    """Call as a client inside a span of its own, sending the W3C traceparent."""
    with trace.get_tracer("tests").start_as_current_span("terminal") as parent:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        try:
            call(request, metadata=tuple(carrier.items()))
        except grpc.RpcError:
            pass
    return parent.get_span_context()


def test_one_trace_covers_the_caller_the_server_call_and_its_sql(stubs, spans):
    phone = stubs.register(phone=new_phone()).phone
    stubs.member.LookupMember(member_pb2.LookupMemberRequest(phone=phone))  # what a process reads once a while
    spans.clear()
    parent = _traced_call(stubs.member.LookupMember, member_pb2.LookupMemberRequest(phone=phone))
    finished = spans.get_finished_spans()
    server = [s for s in finished if s.name == LOOKUP]
    assert len(server) == 1 and server[0].kind == SpanKind.SERVER
    assert server[0].context.trace_id == parent.trace_id and server[0].parent.span_id == parent.span_id
    assert server[0].attributes["rpc.method"] == "LookupMember"
    sql = [s for s in finished if s.parent is not None and s.parent.span_id == server[0].context.span_id]
    selects = [s for s in sql if s.attributes.get("db.statement", "").startswith("SELECT")]
    assert len(selects) == 1  # a lookup is one statement (SQLite adds its BEGIN)
    assert "FROM members" in selects[0].attributes["db.statement"]
    assert all(s.context.trace_id == parent.trace_id for s in sql)


def test_a_refused_call_has_its_reason_on_the_span(stubs, spans):
    _traced_call(stubs.member.LookupMember, member_pb2.LookupMemberRequest(card_number="99999999999"))
    server = [s for s in spans.get_finished_spans() if s.name == LOOKUP]
    assert server[0].attributes["huiyuan.reason"] == "CARD_NOT_FOUND"
    assert server[0].attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]


_UNEXPORTED = """
from opentelemetry import propagate, trace
from huiyuan.runtime import logs, tracing
tracing.configure("probe", "none")
tracer = trace.get_tracer("probe")
with tracer.start_as_current_span("call") as span:
    print(span.is_recording(), logs.current_trace_id())
sampled = {"traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"}
with tracer.start_as_current_span("call", context=propagate.extract(sampled)) as span:
    print(span.is_recording(), logs.current_trace_id())
"""


def test_with_no_exporter_spans_are_not_recorded_but_trace_ids_still_reach_the_logs():
    # Its own process: the tests' tracer provider records every span for the assertions above.
    out = subprocess.run([sys.executable, "-c", _UNEXPORTED], cwd=ROOT, capture_output=True, text=True, check=True)
    own, followed = [line.split() for line in out.stdout.splitlines()]
    assert own[0] == "False" and len(own[1]) == 32 and own[1] != "0" * 32
    assert followed == ["True", "ab" * 16]  # a caller whose trace is exported is still followed


_HEALTH_READS_REVISION = """
import asyncio, logging, sys
from sqlalchemy.ext.asyncio import create_async_engine
from huiyuan.database import migrate
from huiyuan.runtime import logs
logs.configure("probe", "INFO")
engine = create_async_engine("sqlite+aiosqlite:///" + sys.argv[1])
print(asyncio.run(migrate.current_revision(engine)))
logging.getLogger("huiyuan.probe").info("checked")
"""


def test_the_health_check_s_revision_read_leaves_nothing_in_the_logs(tmp_path):
    """It runs every few seconds in every service; alembic would log two lines each time."""
    out = subprocess.run(
        [sys.executable, "-c", _HEALTH_READS_REVISION, str(tmp_path / "probe.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "None"
    assert [json.loads(line)["msg"] for line in out.stderr.splitlines()] == ["checked"]


def test_a_service_s_sqlite_writers_take_turns_however_long_each_holds_the_lock(tmp_path, monkeypatch):
    """SQLite's busy handler would let a waiting writer fail with "database is locked"
    once its busy timeout ran out; a service's writers queue instead."""
    from sqlalchemy import text

    from huiyuan.database import engines as db

    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 100)
    engine = db.make_async_engine(f"sqlite:///{tmp_path}/turns.db", "turns")

    async def writer(n: int) -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            await asyncio.sleep(0.3)  # the write lock is held three times the busy timeout

    async def main() -> int:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (n INTEGER)"))
        await asyncio.gather(*(writer(n) for n in range(5)))
        async with db.reading(engine) as connection:
            written = (await connection.execute(text("SELECT count(*) FROM t"))).scalar()
        await engine.dispose()
        return written

    assert asyncio.run(main()) == 5


def test_a_call_that_cannot_get_at_its_database_is_unavailable_and_its_retry_succeeds(tmp_path, monkeypatch):
    """Not INTERNAL: nothing was written, and the same request_id may be tried again."""
    from huiyuan.database import engines as db
    from services.member.app import SPEC
    from tests.conftest import ServiceThread

    monkeypatch.setattr(db, "WRITER_TURN_WAIT_S", 0.2)
    service = ServiceThread(SPEC, f"sqlite:///{tmp_path}/member.db")
    try:
        stubs = Stubs(service.channel)
        ensure_org(stubs)

        async def a_long_write():  # a bulk job, say, holding SQLite's one write lock
            async with service.app.engine.begin():
                await asyncio.sleep(1)

        holding = asyncio.run_coroutine_threadsafe(a_long_write(), service.loop)
        time.sleep(0.2)
        assert service.run(service.app.database_ready())  # the health check does not wait for the writer
        request = member_pb2.RegisterMemberRequest(
            request_id=rid(),
            channel=member_pb2.REGISTRATION_CHANNEL_STORE,
            actor=ACTOR,
            member=member_pb2.Member(name="等待", phone=new_phone()),
        )
        assert refusal(stubs.member.RegisterMember, request)[:2] == (
            grpc.StatusCode.UNAVAILABLE,
            "DATABASE_UNAVAILABLE",
        )
        holding.result(5)
        assert stubs.member.RegisterMember(request).member.name == "等待"
    finally:
        service.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _import_file(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "phone"])
    for i in range(rows):
        writer.writerow([f"会员{i}", f"16{i:09d}"])
    return out.getvalue().encode()


ROWS = 50_000


def _serving(port: int) -> grpc.Channel:
    """A channel to the service on port, once it reports SERVING."""
    channel = as_gateway("member", f"127.0.0.1:{port}")
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + 30
    while True:
        try:
            if (
                health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                == health_pb2.HealthCheckResponse.SERVING
            ):
                return channel
        except grpc.RpcError:
            pass
        assert time.monotonic() < deadline, "the service never became SERVING"
        time.sleep(0.2)


def test_a_service_whose_stop_is_stuck_exits_after_its_grace_period(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "HUIYUAN_DATABASE_URL": f"sqlite:///{tmp_path}/member.db",
        "HUIYUAN_MEMBER_PORT": str(port),
        "HUIYUAN_SHUTDOWN_GRACE_S": "1",
        "HUIYUAN_LOG_LEVEL": "WARNING",
    }
    from huiyuan.database import migrate
    from services.member.app import SPEC

    migrate.upgrade(SPEC.migrations_dir, env["HUIYUAN_DATABASE_URL"], "member")
    stuck = (
        "import asyncio\n"
        "from huiyuan.runtime import server\n"
        "from services.member.app import SPEC\n"
        "async def never_stops(self, grace=None):\n"
        "    await asyncio.sleep(3600)\n"
        "server.App.stop = never_stops\n"
        "server.SHUTDOWN_SLACK_S = 0.5\n"
        "server.main(SPEC)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", stuck], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        _serving(port).close()
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 1
        assert 1.5 <= time.monotonic() - signalled < 10  # the grace period, the slack, then out
        assert "shutdown did not finish in time" in process.stderr.read()
    finally:
        process.kill()
        process.wait()


def test_sigterm_lets_the_call_in_flight_finish_and_refuses_new_ones(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "HUIYUAN_DATABASE_URL": f"sqlite:///{tmp_path}/member.db",
        "HUIYUAN_MEMBER_PORT": str(port),
        "HUIYUAN_SHUTDOWN_GRACE_S": "30",
        "HUIYUAN_LOG_LEVEL": "WARNING",
    }
    from huiyuan.database import migrate
    from services.member.app import SPEC

    migrate.upgrade(SPEC.migrations_dir, env["HUIYUAN_DATABASE_URL"], "member")
    process = subprocess.Popen([sys.executable, "-m", "services.member"], cwd=ROOT, env=env)
    try:
        channel = _serving(port)
        deadline = time.monotonic() + 30
        stubs = Stubs(channel)
        ensure_org(stubs)
        in_flight = stubs.member.ImportMembers.future(
            member_pb2.ImportMembersRequest(
                request_id=rid(), content=_import_file(ROWS), format=file_pb2.FILE_FORMAT_CSV, actor=ACTOR
            ),
            timeout=120,
        )
        time.sleep(0.5)  # the import is running now: it takes seconds
        process.send_signal(signal.SIGTERM)
        refused = None
        while refused is None and time.monotonic() < deadline + 30:
            try:  # a new client: its call must be refused once shutdown has begun
                with as_gateway("member", f"127.0.0.1:{port}") as fresh:
                    Stubs(fresh).member.GetMember(member_pb2.GetMemberRequest(member_id="m_x"), timeout=2)
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.UNAVAILABLE:  # NOT_FOUND: served, not stopping yet
                    refused = error.code()
            time.sleep(0.1)
        assert refused == grpc.StatusCode.UNAVAILABLE and not in_flight.done()
        assert in_flight.result().imported_rows == ROWS
        assert process.wait(30) == 0
    finally:
        process.kill()
        process.wait()


def test_every_service_s_migrations_make_the_tables_its_code_declares(database_url):
    """Alembic's autogenerate comparison of each service's declared tables with what its
    migrations built: a column, index or type added to the code without a migration
    (or the reverse) fails here, not in production."""
    import importlib

    from huiyuan.database import migrate
    from huiyuan_cli.launcher import SERVICES, spec_of
    from tests.conftest import per_service

    for name, module in SERVICES.items():
        url = per_service(database_url, name)
        migrate.upgrade(spec_of(name).migrations_dir, url, name)
        assert migrate.drift(url, name, importlib.import_module(f"{module}.storage.tables").metadata) == [], name


def test_orders_written_before_the_store_column_get_their_store(database_url):
    from sqlalchemy import text

    from gateway.app import SPEC
    from huiyuan.database import engines as db, migrate
    from tests.conftest import per_service

    url = per_service(database_url, "gateway").replace("gateway.db", "gateway-0005.db")
    schema = "gateway_0005"  # on PostgreSQL a schema of its own, at the old revision
    migrate.upgrade(SPEC.migrations_dir, url, schema, "0005")
    engine = db.make_sync_engine(url, schema)
    with engine.begin() as connection:  # the engine's connections are in the schema
        for order_id, org_path in (("o_1", "hq/east/sh-001/pos-1"), ("o_2", "hq/east/sh-002")):
            connection.execute(
                text(
                    "INSERT INTO orders (order_id, key_id, request_id, request_hash, request, member_id, org_path, state,"
                    " create_time, update_time) VALUES (:o, 'k', :o, 'h', :r, 'm', :p, 'PAID', :t, :t)"
                ),
                {"o": order_id, "r": b"", "p": org_path, "t": "2026-11-23 00:00:00"},
            )
    migrate.upgrade(SPEC.migrations_dir, url, schema)
    with engine.begin() as connection:
        stores = dict(connection.execute(text("SELECT order_id, store_path FROM orders ORDER BY order_id")).all())
    engine.dispose()
    assert stores == {"o_1": "hq/east/sh-001", "o_2": "hq/east/sh-002"}


def test_a_writer_cancelled_as_its_turn_comes_stops_and_leaves_the_turn_free():
    """The race that kept a stopping service alive: the SQLite writers' lock granted to a
    waiting task in the same loop turn as the task is cancelled (huiyuan/database/engines.py)."""
    from huiyuan.database.engines import take_turn

    async def race():
        turn = asyncio.Lock()
        await turn.acquire()
        went_on = []

        async def writer():
            await take_turn(turn, 60)
            went_on.append(True)

        task = asyncio.create_task(writer())
        await asyncio.sleep(0.01)  # the writer waits for its turn
        turn.release()  # its turn comes...
        task.cancel()  # ...as the service stops
        with pytest.raises(asyncio.CancelledError):
            await task
        assert went_on == [] and not turn.locked()
        await turn.acquire()  # held, never released: the next writer's wait runs out
        with pytest.raises(TimeoutError):
            await take_turn(turn, 0.05)

    asyncio.run(race())


def test_an_export_streams_in_chunks_named_once_and_xlsx_stops_at_excel_s_limit(monkeypatch):
    from openpyxl.worksheet._writer import ALL_TEMP_FILES as openpyxl_temp_files

    from huiyuan.runtime import files
    from huiyuan.runtime.errors import FailedPrecondition

    writer = files.FileWriter(
        "会员.csv", [files.Column("name"), files.Column("phone")], xlsx=False, sheet_title="members", chunk_bytes=64
    )
    chunks = [chunk for i in range(20) for chunk in writer.add([f"会员{i}", f"1380000{i:04d}"])] + writer.finish()
    assert len(chunks) > 3 and [name for name, _ in chunks] == ["会员.csv"] + [""] * (len(chunks) - 1)
    rows = list(files.read_rows(b"".join(chunk for _, chunk in chunks), xlsx=False))
    assert rows == [["name", "phone"]] + [[f"会员{i}", f"1380000{i:04d}"] for i in range(20)]
    assert files.FileWriter("empty.csv", [files.Column("name")], xlsx=False, sheet_title="x").finish() == [
        ("empty.csv", "\ufeffname\r\n".encode())
    ]

    monkeypatch.setattr(files, "XLSX_MAX_ROWS", 3)
    book = files.FileWriter("m.xlsx", [files.Column("name")], xlsx=True, sheet_title="members")
    assert [book.add([f"m{i}"]) for i in range(3)] == [[], [], []]  # nothing out before the end
    rows_on_disk = list(openpyxl_temp_files)  # openpyxl's own list of the temporary files it holds
    assert rows_on_disk and all(os.path.exists(path) for path in rows_on_disk)
    with pytest.raises(FailedPrecondition) as refused:
        book.add(["one too many"])
    assert refused.value.reason == "TOO_MANY_ROWS"
    assert not any(os.path.exists(path) for path in rows_on_disk) and not openpyxl_temp_files  # let go at once

    async def rows_then_failure():
        yield ["张三"]
        raise RuntimeError("the database went away")

    async def drain(chunks):
        return [chunk async for chunk in chunks]

    with pytest.raises(RuntimeError):  # an export that fails (or is cancelled) midway lets go of its file too
        asyncio.run(
            drain(
                files.FileWriter("m.xlsx", [files.Column("name")], xlsx=True, sheet_title="m").stream(
                    rows_then_failure()
                )
            )
        )
    assert not openpyxl_temp_files
    book = files.FileWriter("m.xlsx", [files.Column("name")], xlsx=True, sheet_title="members")
    book.add(["张三"])
    assert list(files.read_rows(b"".join(chunk for _, chunk in book.finish()), xlsx=True)) == [["name"], ["张三"]]


def test_every_export_writes_money_times_and_days_as_excel_reads_them(monkeypatch):
    """One set of conventions for every export: amounts in yuan as numbers formatted
    #,##0.00, times as Excel date-times on the chain's clock (naive: Excel has no zones),
    days as dates, a day with no year and a text that looks like a formula as text; the
    CSV holds the same as plain text; a file's name carries the local time."""
    import csv
    import io
    from datetime import date, datetime
    from decimal import Decimal

    from openpyxl import load_workbook

    from huiyuan.runtime import business_time, files

    columns = [
        files.Column("姓名"),
        files.Column("金额", files.MONEY),
        files.Column("积分", files.COUNT),
        files.Column("时间", files.TIME),
        files.Column("生日", files.DAY),
    ]
    at = datetime(2026, 12, 31, 17, 30, 5, 999_999, tzinfo=UTC)  # 01:30:05 on New Year's Day in Shanghai
    rows = [["=1+1", 123_456_78, 12, at, date(1990, 5, 17)], ["张三", -5, None, None, "05-17"]]

    def written(xlsx):
        writer = files.FileWriter("x", columns, xlsx=xlsx, sheet_title="表")
        return b"".join(chunk for row in rows for _, chunk in writer.add(row)) + b"".join(c for _, c in writer.finish())

    sheet = load_workbook(io.BytesIO(written(xlsx=True))).worksheets[0]
    header, first, second = list(sheet.iter_rows())
    assert [c.value for c in header] == ["姓名", "金额", "积分", "时间", "生日"] and all(c.font.b for c in header)
    assert (first[0].value, first[0].data_type) == ("=1+1", "s")  # a name, never run as a formula
    assert (first[1].value, first[1].data_type, first[1].number_format) == (123456.78, "n", "#,##0.00")
    assert (Decimal(str(second[1].value)), second[1].number_format) == (Decimal("-0.05"), "#,##0.00")
    assert (first[2].value, second[2].value) == (12, None)
    assert (first[3].value, first[3].number_format) == (datetime(2027, 1, 1, 1, 30, 5), "yyyy-mm-dd hh:mm:ss")
    assert (first[4].value, first[4].number_format) == (datetime(1990, 5, 17), "yyyy-mm-dd")
    assert (second[4].value, second[4].data_type) == ("05-17", "s")
    text = written(xlsx=False).decode("utf-8")
    assert text.startswith("\ufeff") and list(csv.reader(io.StringIO(text[1:], newline=""))) == [
        ["姓名", "金额", "积分", "时间", "生日"],
        ["=1+1", "123456.78", "12", "2027-01-01 01:30:05", "1990-05-17"],
        ["张三", "-0.05", "", "", "05-17"],
    ]
    monkeypatch.setattr(files, "utcnow", lambda: at)
    assert business_time.CHAIN_ZONE.key == "Asia/Shanghai"
    assert files.export_name("members", "hq/east", xlsx=True) == "members-hq_east-20270101-013005.xlsx"
    assert files.export_name("members", "", xlsx=False) == "members-20270101-013005.csv"
