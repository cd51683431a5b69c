"""How `huiyuan` reads its command line: argparse, speaking the chosen language, and the
types of what a user types (amounts in yuan, days, months).

A bad argument is one line in the user's language and a hint to -h, never argparse's
usage dump of 20 lines before it. argparse writes its own refusals in English; Parser
turns the few it makes (a required argument missing, an unknown option or choice, a
value that is not a number) into the chosen language by their shape.
"""

import argparse
import calendar
import difflib
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import ClassVar

from huiyuan.runtime.business_time import CHAIN_ZONE
from huiyuan_cli.cli_text import t

YUAN = re.compile(r"^-?[0-9]+(\.[0-9]{1,2})?$")  # 100, 100.5, 100.50: no exponent, no thousands separator
TODAY, YESTERDAY = ("today", "今天"), ("yesterday", "昨天")
THIS_MONTH, LAST_MONTH = ("this", "本月"), ("last", "上月")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's help, its headings and "usage:" in the chosen language."""

    HEADINGS: ClassVar[dict[str, str]] = {"positional arguments": "heading_positional", "options": "heading_options"}

    def add_usage(self, usage, actions, groups, prefix=None):
        super().add_usage(usage, actions, groups, t("usage_prefix") if prefix is None else prefix)

    def start_section(self, heading):
        super().start_section(t(self.HEADINGS[heading]) if heading in self.HEADINGS else heading)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose -h and refusals speak the chosen language; a refusal is
    one line and a hint, and exits with 2 as argparse's do."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", Formatter)
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self.add_argument("-h", "--help", action="help", help=t("help_help"))

    def error(self, message: str):
        self.exit(
            2, t("arg_error", prog=self.prog, message=said(message)) + "\n" + t("usage_hint", prog=self.prog) + "\n"
        )


# argparse's refusals (Python 3.11 to 3.13), by shape: "argument --amount: ..." and the rest.
ARGUMENT = re.compile(r"^argument (?P<option>\S+): (?P<message>.*)$", re.S)
REQUIRED = re.compile(r"^the following arguments are required: (?P<names>.*)$")
UNRECOGNIZED = re.compile(r"^unrecognized arguments: (?P<words>.*)$")
AMBIGUOUS = re.compile(r"^ambiguous option: (?P<option>\S+) could match (?P<matches>.*)$")
INVALID_CHOICE = re.compile(r"^invalid choice: (?P<value>.*?) \(choose from (?P<choices>.*)\)$")
INVALID_NUMBER = re.compile(r"^invalid int value: (?P<value>.*)$")


def said(message: str) -> str:
    """One of argparse's refusals as the chosen language says it; a type of ours raises
    its refusal in that language already, and is passed on with the option it is for."""
    if found := REQUIRED.match(message):
        return t("arg_required", names=found["names"])
    if found := UNRECOGNIZED.match(message):
        return t("arg_unrecognized", words=found["words"])
    if found := AMBIGUOUS.match(message):
        return t("arg_ambiguous", option=found["option"], matches=found["matches"])
    found = ARGUMENT.match(message)
    if not found:
        return message
    option, rest = found["option"], found["message"]
    if rest == "expected one argument":
        return t("arg_expects_value", option=option)
    if choice := INVALID_CHOICE.match(rest):
        value, choices = choice["value"], choice["choices"]
        if option == t("metavar_command"):  # a command mistyped: the closest, not the whole list
            names = [name.strip("'") for name in choices.split(", ")]
            close = difflib.get_close_matches(value.strip("'"), names, n=1)
            return t("arg_invalid_command", value=value, guess=t("arg_did_you_mean", word=close[0]) if close else "")
        return t("arg_invalid_choice", option=option, value=value, choices=choices)
    if number := INVALID_NUMBER.match(rest):
        return t("arg_invalid_number", option=option, value=number["value"])
    return t("arg_other", option=option, message=rest)


def amount(text: str) -> int:
    """An amount typed in yuan (100, 100.5, 100.50) as fen, more than zero."""
    fen = _fen(text)
    if fen <= 0:
        raise argparse.ArgumentTypeError(t("amount_positive", text=text))
    return fen


def price(text: str) -> int:
    """A unit price typed in yuan as fen; zero is a price (a free sample), a sign is not."""
    fen = _fen(text)
    if fen < 0:
        raise argparse.ArgumentTypeError(t("price_not_negative", text=text))
    return fen


def _fen(text: str) -> int:
    """Fen of yuan as typed; a sign is read, so that -5 is told it is below zero."""
    if not YUAN.match(text.strip()):
        raise argparse.ArgumentTypeError(t("amount_format", text=text))
    return int(Decimal(text.strip()) * 100)


def today() -> date:
    """Today on the chain's clock: a back office's "today" is the stores' day."""
    return datetime.now(CHAIN_ZONE).date()


def day(text: str) -> date:
    """YYYY-MM-DD, today or yesterday (今天, 昨天)."""
    word = text.strip().lower()
    if word in TODAY:
        return today()
    if word in YESTERDAY:
        return today() - timedelta(days=1)
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise argparse.ArgumentTypeError(t("day_invalid", text=text)) from None


def month(text: str) -> tuple[date, date]:
    """(first, last day) of YYYY-MM, this month (so far: up to today) or last month."""
    word = text.strip().lower()
    now = today()
    if word in THIS_MONTH:
        return now.replace(day=1), now
    if word in LAST_MONTH:
        last = now.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    try:
        first = datetime.strptime(word, "%Y-%m").date()  # noqa: DTZ007 - only its date is kept
    except ValueError:
        raise argparse.ArgumentTypeError(t("month_invalid", text=text)) from None
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


def period(args) -> tuple[date, date]:
    """The days an export or settlement covers: --month, or --from to --to (today by
    default), or this month so far when none is said."""
    if args.month and (args.first_day or args.last_day):
        raise SystemExit(t("period_both"))
    if args.month:
        return args.month
    if args.last_day and not args.first_day:
        raise SystemExit(t("period_to_alone"))
    if not args.first_day:
        return month("this")
    last = args.last_day or today()
    if args.first_day > last:
        raise SystemExit(t("period_reversed", first=args.first_day, last=last))
    return args.first_day, last
