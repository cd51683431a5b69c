"""The zh-CN message of every refusal is a Chinese sentence that names no internal code.

A cashier reads it at the till: "该卡已挂失，不能冻结。", not "当前卡状态(LOST)不允许此操作
(FREEZE)。". A static scan of every refusal the code constructs (DomainError and its
kinds, with the reason, the English and the Chinese message as their first three
arguments): its Chinese is Chinese, its own text holds no UPPER_SNAKE reason nor
snake_case field name, and it interpolates no value that is one (a reason, a state, an
action: those have their own words, as services/member/domain/cards.py's CARD_STATES_ZH).
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = {
    "DomainError",
    "NotFound",
    "AlreadyExists",
    "FailedPrecondition",
    "Unauthenticated",
    "PermissionDenied",
    "Unavailable",
    "Internal",
}
CHINESE = re.compile(r"[\u4e00-\u9fff]")
CODE = re.compile(r"\b[A-Za-z]+_[A-Za-z_]+\b|\b[A-Z]{3,}\b")  # REQUEST_ID_REUSED, request_id, ACTIVE
WORDS_NOT_CODES = {"CSV", "XLSX", "UTF"}  # file formats a person picks in Excel
# Interpolated values that are codes: a reason, a state or status, an action, an enum's name.
CODED_VALUES = re.compile(r"reason|state|status|action|\bkind\b")


def _sources():
    for folder in ("services", "huiyuan", "gateway"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if "/v1/" not in name and "/migrations/" not in name:
                yield name, path.read_text()


def zh_messages():
    """(where, the zh argument's node, its source) of every refusal constructed with its
    message written there (not one passed on, as a relayed refusal's)."""
    for name, source in _sources():
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.Call)
                and len(node.args) >= 3
                and getattr(node.func, "id", getattr(node.func, "attr", "")) in KINDS
                and isinstance(node.args[2], (ast.Constant, ast.JoinedStr, ast.BinOp))
            ):
                yield f"{name}:{node.lineno}", node.args[2], ast.get_source_segment(source, node.args[2])


def problems(zh: ast.expr, text: str) -> list[str]:
    found = []
    literal = "".join(
        part.value for part in ast.walk(zh) if isinstance(part, ast.Constant) and isinstance(part.value, str)
    )
    if not CHINESE.search(literal):
        found.append("not Chinese")
    found += [f"names {code}" for code in CODE.findall(literal) if code not in WORDS_NOT_CODES]
    for value in (part.value for part in ast.walk(zh) if isinstance(part, ast.FormattedValue)):
        translated = isinstance(value, ast.Subscript) and ast.unparse(value.value).endswith("_ZH")  # STATUS_ZH[s]
        if CODED_VALUES.search(ast.unparse(value)) and not translated:
            found.append(f"interpolates {ast.unparse(value)}")
    return found


def test_every_zh_message_is_a_chinese_sentence_naming_no_code():
    found = list(zh_messages())
    assert len(found) > 80  # the scan sees the refusals (a broken one would pass on nothing)
    bad = {where: problems(zh, text) for where, zh, text in found if problems(zh, text)}
    assert bad == {}


def test_the_scan_finds_what_it_looks_for():
    cases = {
        'f"优惠券 {code} 不可用：{reason}。"': ["interpolates reason"],
        '"该 request_id 已用于另一个不同的请求。"': ["names request_id"],
        'f"当前卡状态({card.state})不允许此操作。"': ["interpolates card.state"],
        '"Coupon expired."': ["not Chinese"],
        'f"超过 {n:,} 行，Excel 无法打开：请改用 CSV。"': [],
        'f"该卡{CARD_STATES_ZH[card.state]}，不能冻结。"': [],
    }
    for text, expected in cases.items():
        assert problems(ast.parse(text, mode="eval").body, text) == expected, text
