"""The `huiyuan` command as a newcomer meets it: Chinese by default and English on asking,
a bad argument told in one line, amounts and days read as a back office types them,
files it cannot read named, and `huiyuan up` printing commands that work as printed."""

import argparse
import os
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from huiyuan_cli import cli, cli_args, cli_text, pos_office

SOURCES = Path(cli.__file__).parent


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


# What the Chinese leaves out on purpose: the status code (its sentence says it).
LEFT_OUT_IN_CHINESE = {"refused": {"code"}}


def test_every_sentence_is_said_in_both_languages_with_the_same_blanks():
    for key, (zh, en) in cli_text.TEXT.items():
        assert type(zh) is type(en), key
        if isinstance(zh, tuple):  # a table's headings
            assert len(zh) == len(en), key
            continue
        assert fields(zh) | LEFT_OUT_IN_CHINESE.get(key, set()) == fields(en), key
        assert zh != en and re.search(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]", zh), (
            key
        )  # Chinese, or its punctuation
        for lang in cli_text.LANGUAGES:  # each can be said, whatever its blanks are called ({key} too)
            cli_text.choose(lang)
            assert cli_text.t(key, **dict.fromkeys(fields(en), 1))
    cli_text.choose(None)


def test_every_key_the_code_names_is_in_the_table_and_every_key_in_the_table_is_used():
    code = "\n".join(p.read_text() for p in SOURCES.glob("*.py") if p.name != "cli_text.py")
    named = set(re.findall(r"""\b(?:t|headings)\(["'](\w+)["']""", code))
    assert named and named <= set(cli_text.TEXT)
    literals = set(re.findall(r"""["'](\w+)["']""", code))
    assert set(cli_text.TEXT) - literals == set()  # none left behind


@pytest.mark.parametrize(
    "lang, words, told",
    [
        (
            "zh",
            ["pos", "top-up", "--card", "8000000000000001", "--amount", "1e3"],
            "huiyuan pos：--amount：1e3：金额以元为单位，最多两位小数，例如 100、100.5、100.50",
        ),
        ("zh", ["pos", "top-up", "--amount", "-5"], "huiyuan pos：--amount：-5：金额必须大于零"),
        ("en", ["pos", "top-up", "--amount", "-5"], "huiyuan pos: --amount: -5: an amount must be positive"),
        ("zh", ["pos", "lokup"], "huiyuan pos：没有 'lokup' 这个命令（是不是 lookup？）"),
        ("en", ["membr"], "huiyuan: there is no command 'membr' (did you mean member?)"),
        (
            "zh",
            ["pos", "lookup", "--tender", "bitcoin"],
            "huiyuan pos：--tender：没有 'bitcoin' 这一项；可选：'alipay', 'bank-card', 'cash', 'wechat-pay'",
        ),
        ("zh", ["pos", "lookup", "--limit", "x"], "huiyuan pos：--limit：'x' 不是整数"),
        (
            "zh",
            ["pos", "day", "--date", "2026-02-30"],
            "huiyuan pos：--date：2026-02-30：日期写作 YYYY-MM-DD（如 2026-11-01），或 today（今天）、yesterday（昨天）",
        ),
        (
            "en",
            ["pos", "export", "--month", "11"],
            "huiyuan pos: --month: 11: a month is YYYY-MM (such as 2026-11), this or last",
        ),
        ("zh", ["key", "issue"], "huiyuan key：缺少参数：--org, --role"),
        ("zh", ["pos", "lookup", "--card"], "huiyuan pos：--card 后面需要一个值"),
        ("zh", [], "huiyuan：缺少参数：命令"),
    ],
)
def test_a_bad_argument_is_one_line_in_the_chosen_language_and_a_hint(lang, words, told, capsys):
    with pytest.raises(SystemExit) as ended:
        cli.main([*words, "--lang", lang])
    assert ended.value.code == 2
    hint = "（用法见 huiyuan pos -h）" if lang == "zh" else "(see huiyuan pos -h)"
    prog = told.split("：" if lang == "zh" else ": ")[0]
    assert capsys.readouterr().err.splitlines() == [told, hint.replace("huiyuan pos", prog)]  # no usage dump


def test_the_language_comes_from_lang_then_huiyuan_lang_then_is_chinese(monkeypatch, capsys):
    monkeypatch.delenv("HUIYUAN_LANG", raising=False)
    for words, env, heading in [
        (["-h"], "", "用法：huiyuan"),
        (["-h"], "en_US.UTF-8", "usage: huiyuan"),
        (["--lang=zh", "-h"], "en", "用法：huiyuan"),
        (["pos", "-h", "--lang", "en"], "", "usage: huiyuan pos COMMAND"),
    ]:
        monkeypatch.setenv("HUIYUAN_LANG", env)
        with pytest.raises(SystemExit) as ended:
            cli.main(words)
        out = capsys.readouterr().out
        assert ended.value.code == 0 and out.startswith(heading), (words, env)
        assert ("选项:" in out and "options:" not in out) if heading.startswith("用法") else "options:" in out
    with pytest.raises(SystemExit, match="--lang fr"):
        cli.main(["--lang", "fr", "pos"])
    monkeypatch.delenv("HUIYUAN_LANG")
    with pytest.raises(SystemExit):
        cli.main(["--lang", "en", "pos", "-h"])
    capsys.readouterr()
    assert cli_text.language() == "zh"  # --lang was that run's: the next call is in Chinese again


def test_an_amount_is_yuan_with_at_most_two_decimals():
    assert [cli_args.amount(text) for text in ("100", "100.5", "100.50", "0.01", " 99.9 ")] == [
        100_00,
        100_50,
        100_50,
        1,
        99_90,
    ]
    for text in ("1e3", "1E3", "12.345", "1,000", "abc", "NaN", "Infinity", "", "+5", "0x10", "１００"):
        with pytest.raises(argparse.ArgumentTypeError, match="最多两位小数"):
            cli_args.amount(text)
    for text in ("-5", "-0.01", "0", "0.00"):
        with pytest.raises(argparse.ArgumentTypeError, match="必须大于零"):
            cli_args.amount(text)
    assert cli_args.price("0") == 0  # a free sample is a price
    with pytest.raises(argparse.ArgumentTypeError, match="不能为负"):
        cli_args.price("-1")


def test_days_and_months_as_a_back_office_says_them(monkeypatch):
    monkeypatch.setattr(cli_args, "today", lambda: date(2026, 3, 1))
    assert [cli_args.day(w) for w in ("today", "TODAY", "今天", "yesterday", "昨天", "2026-11-01")] == [
        date(2026, 3, 1),
        date(2026, 3, 1),
        date(2026, 3, 1),
        date(2026, 2, 28),
        date(2026, 2, 28),
        date(2026, 11, 1),
    ]
    assert cli_args.month("this") == cli_args.month("本月") == (date(2026, 3, 1), date(2026, 3, 1))  # so far
    assert cli_args.month("last") == cli_args.month("上月") == (date(2026, 2, 1), date(2026, 2, 28))
    assert cli_args.month("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    for bad in ("2026-13", "11", "2026-11-01"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli_args.month(bad)

    def period(*words):
        return cli_args.period(cli.parser().parse_args(["pos", "export", *words]))

    assert period() == (date(2026, 3, 1), date(2026, 3, 1))  # this month so far
    assert period("--month", "2026-01") == (date(2026, 1, 1), date(2026, 1, 31))
    assert period("--from", "2026-02-20") == (date(2026, 2, 20), date(2026, 3, 1))  # to today
    assert period("--from", "yesterday", "--to", "yesterday") == (date(2026, 2, 28), date(2026, 2, 28))
    for words, said in [
        (("--month", "last", "--from", "today"), "只能选一种"),
        (("--to", "today"), "需要与 --from"),
        (("--from", "2026-03-02", "--to", "2026-03-01"), "晚于"),
    ]:
        with pytest.raises(SystemExit, match=said):
            period(*words)


def test_a_file_that_cannot_be_read_or_written_is_named_not_a_traceback(tmp_path):
    (tmp_path / "members.csv").write_text("姓名,手机\n", encoding="utf-8")
    (tmp_path / "book.xlsx").write_bytes(b"PK")
    (tmp_path / "folder.csv").mkdir()
    assert pos_office.read_file(str(tmp_path / "members.csv")) == ("姓名,手机\n".encode(), False)
    assert pos_office.read_file(str(tmp_path / "book.xlsx")) == (b"PK", True)
    for name, said in [
        ("nothere.csv", "找不到文件"),
        ("folder.csv", "是文件夹"),
        ("old.xls", "另存为 .xlsx"),
        ("members", "只能读取 .csv 或 .xlsx"),
    ]:
        with pytest.raises(SystemExit, match=said):
            pos_office.read_file(str(tmp_path / name))

    def chunks():
        return iter([argparse.Namespace(file_name="orders.csv", chunk=b"x")])

    with pytest.raises(SystemExit, match=r"无法写入 .*no/such/folder"):
        pos_office.save_file(chunks(), str(tmp_path / "no" / "such" / "folder" / "orders.csv"))
    pos_office.save_file(chunks(), str(tmp_path / "folder.csv"))  # a folder: the file goes into it
    assert (tmp_path / "folder.csv" / "orders.csv").read_bytes() == b"x"


def test_a_table_lines_up_in_chinese():
    """A Chinese character takes two columns of a terminal: the day's table pads by them."""
    from huiyuan_cli.pos_office import _table_row

    header, row = (
        _table_row(cells, (12, 12, 12, 0, 12, 12))
        for cells in (
            ("收款方式", "销售", "充值", "计次卡", "退款", "净额"),
            ("微信支付", "¥0.00", "¥400.00", "", "¥100.00", "¥300.00"),
        )
    )

    def right_edges(line, cells):
        return [cli_text.width(line[: line.index(cell) + len(cell)]) for cell in cells]

    assert (
        right_edges(header, ("销售", "充值", "退款", "净额"))
        == right_edges(row, ("¥0.00", "¥400.00", "¥100.00", "¥300.00"))
        == [24, 36, 48, 60]
    )


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_huiyuan_up_prints_commands_that_work_exactly_as_printed(tmp_path):
    """`huiyuan up` on ports and a folder of its own: every command its banner prints,
    run in a shell that has only what the banner says (its export line), answers 0 and
    says something; the checkout twice, as a newcomer would try it again."""
    huiyuan = Path(sys.executable).parent / "huiyuan"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIYUAN_")}
    services = ("gateway", "member", "wallet", "points", "campaign")
    env.update({f"HUIYUAN_{name.upper()}_PORT": str(port) for name, port in zip(services, _free_ports(5))})
    env["HUIYUAN_VAR_DIR"] = "var"  # relative: the banner must say where it is
    up = subprocess.Popen(
        [str(huiyuan), "up"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        printed, deadline = [], time.monotonic() + 90
        for line in up.stdout:
            printed.append(line.rstrip("\n"))
            if "Ctrl-C" in line or time.monotonic() > deadline:
                break
        banner = printed[next(i for i, line in enumerate(printed) if line.startswith("huiyuan 已启动")) :]
        setting = next(line.strip() for line in banner if line.strip().startswith("export "))
        commands = [line.strip() for line in banner if line.strip().startswith(str(huiyuan))]
        assert len(commands) >= 6 and f"HUIYUAN_VAR_DIR={tmp_path / 'var'}" in setting
        shell = {k: v for k, v in env.items() if not k.startswith("HUIYUAN_")}
        elsewhere = tmp_path / "another"
        elsewhere.mkdir()
        for command in commands + [c for c in commands if " checkout " in c]:
            ran = subprocess.run(
                ["bash", "-c", f"{setting}\n{command}"],
                cwd=elsewhere,
                env=shell,
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert ran.returncode == 0 and ran.stdout.strip() and not ran.stderr, (command, ran.stdout, ran.stderr)
        # the reports recounted from the raw records, every service at once, while they run
        ran = subprocess.run(
            ["bash", "-c", f"{setting}\n{huiyuan} rebuild-reports"],
            cwd=elsewhere,
            env=shell,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 0 and not ran.stderr, (ran.stdout, ran.stderr)
        recounted = dict(re.findall(r"^(\w+)：重算 ([\d,]+) 条贡献", ran.stdout, flags=re.M))
        assert set(recounted) == set(services) and int(recounted["gateway"].replace(",", "")) > 0, ran.stdout
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        up.wait(timeout=30)
        shutil.rmtree(tmp_path / "var", ignore_errors=True)


def test_huiyuan_up_refuses_a_port_another_run_holds_before_it_starts_anything(monkeypatch):
    """Otherwise the other run's services answer its health checks and get its demo, and
    the terminal key it prints is one their gateway does not know."""
    from huiyuan_cli import launcher

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        ports = [*_free_ports(4), held.getsockname()[1]]
        for name, port in zip(("member", "wallet", "points", "campaign", "gateway"), ports):
            monkeypatch.setenv(f"HUIYUAN_{name.upper()}_PORT", str(port))
        with pytest.raises(SystemExit, match=f"gateway 的端口 127.0.0.1:{ports[-1]} 已被占用.*HUIYUAN_GATEWAY_PORT"):
            launcher.check_ports_free()
    launcher.check_ports_free()  # let go: free again
