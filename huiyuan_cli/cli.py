"""The `huiyuan` command: run the system, migrate databases, look members up, and the
till's and back offices' commands (huiyuan_cli.pos). `huiyuan -h` lists them, in Chinese by
default, in English with --lang en or HUIYUAN_LANG=en (huiyuan_cli/cli_text.py holds what
it says in both).
"""

import signal
import sys

import grpc

from huiyuan.runtime.business_time import CHAIN_ZONE
from huiyuan.runtime.config import MissingSecret
from huiyuan.runtime.money import yuan
from huiyuan.runtime.status import NO_ANSWER, from_status, parse_rpc_error
from huiyuan_cli import cli_text
from huiyuan_cli.cli_args import Parser
from huiyuan_cli.cli_text import enum_text, left, right, t


def _channel(service: str):
    """A channel to a service, its calls signed with the operator's key (var/keys/operator.key,
    which `huiyuan up` makes, or HUIYUAN_IDENTITY_KEY_FILE)."""
    from huiyuan.runtime import clients, service_auth

    return clients.blocking_channel(service, service_auth.operator_identity())


def _member_stub():
    from huiyuan.member.v1 import member_pb2_grpc

    return member_pb2_grpc.MemberServiceStub(_channel("member"))


def _print_member(m, tier_name="", cards=()):
    from huiyuan.member.v1 import card_pb2

    print(t("member_name_line", name=m.name, phone=f"{m.phone[:3]}****{m.phone[-4:]}", member_id=m.member_id))
    print(
        t(
            "member_detail_line",
            store=m.home_store_path or "-",
            tier=tier_name or "-",
            day=f"{m.create_time.ToDatetime(tzinfo=CHAIN_ZONE):%Y-%m-%d}",
        )
    )
    for c in cards:
        print(t("member_card_line", number=c.card_number, state=enum_text(card_pb2.CardState, c.state)))


def _lookup_request(args):
    """The member named by --phone, --card or --id."""
    from huiyuan.member.v1 import member_pb2

    # one key: they are a oneof, and setting another, even to "", would choose that one
    key = next(
        (
            (name, value)
            for name, value in (("phone", args.phone), ("card_number", args.card), ("member_id", args.id))
            if value
        ),
        None,
    )
    if key is None:
        raise SystemExit(t("say_whom"))
    return member_pb2.LookupMemberRequest(**dict([key]))


def _member(args) -> int:
    from huiyuan.member.v1 import member_pb2, tier_pb2, tier_pb2_grpc

    stub = _member_stub()
    if args.action == "find":
        response = stub.LookupMember(_lookup_request(args), timeout=5)
        _print_member(response.member, response.tier.name if response.HasField("tier") else "", response.cards)
        return 0
    tiers = tier_pb2_grpc.TierServiceStub(_channel("member"))
    tier_names = {tier.tier_id: tier.name for tier in tiers.ListTiers(tier_pb2.ListTiersRequest(), timeout=5).tiers}
    response = stub.ListMembers(
        member_pb2.ListMembersRequest(filter=member_pb2.MemberFilter(org_path=args.org or ""), page_size=args.limit),
        timeout=5,
    )
    for m in response.members:
        _print_member(m, tier_names.get(m.tier_id, ""))
    if not response.members:
        print(t("member_none"))
    return 0


def _wallet(args) -> int:
    from huiyuan.wallet.v1 import wallet_pb2, wallet_pb2_grpc

    member = _member_stub().LookupMember(_lookup_request(args), timeout=5).member
    wallet = wallet_pb2_grpc.WalletServiceStub(_channel("wallet"))
    b = wallet.GetBalance(wallet_pb2.GetBalanceRequest(member_id=member.member_id), timeout=5).balance
    print(
        t(
            "wallet_balance",
            name=member.name,
            total=yuan(b.principal_fen + b.bonus_fen),
            principal=yuan(b.principal_fen),
            bonus=yuan(b.bonus_fen),
            held=yuan(b.held_fen),
            available=yuan(b.available_fen),
        )
    )
    if args.action == "statement":
        entries = wallet.ListEntries(
            wallet_pb2.ListEntriesRequest(member_id=member.member_id, page_size=args.limit), timeout=5
        )
        for e in entries.entries:
            print(
                t(
                    "wallet_entry",
                    time=f"{e.post_time.ToDatetime(tzinfo=CHAIN_ZONE):%Y-%m-%d %H:%M}",
                    kind=left(enum_text(wallet_pb2.EntryKind, e.kind), 18),
                    amount=right(yuan(e.principal_delta_fen + e.bonus_delta_fen), 10),
                    balance=right(yuan(e.balance_after_fen), 10),
                    store=e.store_path,
                    memo=e.memo,
                ).rstrip()
            )
    return 0


def _issue_key(args) -> int:
    from gateway.domain.callers import Role
    from gateway.use_cases import bootstrap
    from huiyuan.runtime.config import Settings
    from huiyuan.runtime.errors import DomainError

    try:
        key_id, key = bootstrap.issue_key(
            Settings.from_env("gateway").database_url,
            args.org,
            Role(args.role),
            args.label,
            member_database_url=Settings.from_env("member").database_url,
        )
    except DomainError as refusal:  # no such node, or a role that does not work at it: as IssueApiKey says
        message = refusal.zh if cli_text.language() == "zh" and refusal.zh else refusal.en
        print(t("refused", code=refusal.code.name, reason=refusal.reason, message=message), file=sys.stderr)
        return 1
    print(t("key_issued", key_id=key_id, key=key))
    return 0


def _create_person(args) -> int:
    import getpass
    import os

    from gateway.domain.people import PersonRole
    from gateway.use_cases import bootstrap
    from huiyuan.runtime.config import Settings
    from huiyuan.runtime.errors import DomainError, InvalidArgument

    # never on the command line (shell history, ps): the environment, the terminal, or stdin
    password = os.environ.get("HUIYUAN_PERSON_PASSWORD", "")
    if not password:
        password = getpass.getpass(t("person_password_prompt")) if sys.stdin.isatty() else sys.stdin.readline().strip()
    try:
        person_id = bootstrap.create_person(
            Settings.from_env("gateway").database_url,
            login=args.login,
            name=args.name,
            phone=args.phone,
            org_path=args.org,
            role=PersonRole(args.role),
            password=password,
            member_database_url=Settings.from_env("member").database_url,
        )
    except DomainError as refusal:  # as CreatePerson would refuse it
        message = refusal.zh if cli_text.language() == "zh" and refusal.zh else refusal.en
        if isinstance(refusal, InvalidArgument):
            message += " " + "; ".join(f"{v.field}: {v.reason}" for v in refusal.violations)
        print(t("refused", code=refusal.code.name, reason=refusal.reason, message=message), file=sys.stderr)
        return 1
    print(t("person_created", person_id=person_id, login=args.login))
    return 0


def parser() -> Parser:
    """The whole command line, in this run's language."""
    from huiyuan_cli import pos

    top = Parser(prog="huiyuan", description=t("huiyuan_description"))
    top.add_argument("--lang", choices=cli_text.LANGUAGES, help=t("help_lang"))  # read first: cli_text.take_language
    sub = top.add_subparsers(dest="command", required=True, title=t("heading_commands"), metavar=t("metavar_command"))
    up = sub.add_parser("up", help=t("help_up"))
    up.add_argument("--no-demo", action="store_true", help=t("help_no_demo"))
    mig = sub.add_parser("migrate", help=t("help_migrate"))
    mig.add_argument("services", nargs="*", help=t("help_services"))
    rebuild = sub.add_parser("rebuild-reports", help=t("help_rebuild_reports"))
    rebuild.add_argument("services", nargs="*", help=t("help_services"))
    member = sub.add_parser("member", help=t("help_member"))
    member.add_argument("action", choices=["find", "list"], metavar="find|list")
    member.add_argument("--phone", help=t("help_phone"))
    member.add_argument("--card", help=t("help_card"))
    member.add_argument("--id", help=t("help_member_id"))
    member.add_argument("--org", help=t("help_org"))
    member.add_argument("--limit", type=int, default=20, help=t("help_limit"))
    wallet = sub.add_parser("wallet", help=t("help_wallet"))
    wallet.add_argument("action", choices=["balance", "statement"], metavar="balance|statement")
    wallet.add_argument("--phone", help=t("help_phone"))
    wallet.add_argument("--card", help=t("help_card"))
    wallet.add_argument("--id", help=t("help_member_id"))
    wallet.add_argument("--limit", type=int, default=20, help=t("help_limit"))
    pos.add_parser(sub)
    key = sub.add_parser("key", help=t("help_key"))
    key.add_argument("action", choices=["issue"], metavar="issue")
    key.add_argument("--org", required=True, help=t("help_key_org"))
    key.add_argument(
        "--role",
        required=True,
        choices=["TERMINAL", "STORE_MANAGER", "REGIONAL_MANAGER", "HQ_ADMIN"],
        help=t("help_role"),
    )
    key.add_argument("--label", default="", help=t("help_label"))
    person = sub.add_parser("person", help=t("help_person"))
    person.add_argument("action", choices=["create"], metavar="create")
    person.add_argument("--login", required=True, help=t("help_person_login"))
    person.add_argument("--name", required=True, help=t("help_person_name"))
    person.add_argument("--phone", default="", help=t("help_phone"))
    person.add_argument("--org", required=True, help=t("help_key_org"))
    person.add_argument(
        "--role",
        required=True,
        choices=["STORE_MANAGER", "REGIONAL_MANAGER", "HQ_ADMIN", "FINANCE", "MARKETING"],
        help=t("help_role"),
    )
    return top


def main(argv=None) -> int:
    lang, argv = cli_text.take_language(sys.argv[1:] if argv is None else list(argv))
    cli_text.choose(lang)
    try:
        return _run(parser().parse_args(argv))
    finally:
        cli_text.choose(None)  # --lang is this run's (tests run main many times in one process)


def _run(args) -> int:
    from huiyuan_cli import launcher, pos

    if args.command != "up" and hasattr(signal, "SIGPIPE"):
        # `huiyuan pos receipt ID | head` ends quietly, as a shell tool does, when head has
        # read enough (Python would raise BrokenPipeError at the next print).
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)

    try:
        if args.command == "up":
            return launcher.up(seed=not args.no_demo)
        if args.command == "migrate":
            unknown = set(args.services) - set(launcher.SERVICES)
            if unknown:
                raise SystemExit(
                    t("unknown_services", names=", ".join(sorted(unknown)), known=", ".join(launcher.SERVICES))
                )
            launcher.migrate_all(args.services or list(launcher.SERVICES))
            return 0
        if args.command == "rebuild-reports":
            unknown = set(args.services) - set(launcher.SERVICES)
            if unknown:
                raise SystemExit(
                    t("unknown_services", names=", ".join(sorted(unknown)), known=", ".join(launcher.SERVICES))
                )
            for service, count, seconds in launcher.rebuild_reports(args.services or list(launcher.SERVICES)):
                print(t("rebuilt_reports", service=service, count=f"{count:,}", seconds=f"{seconds:.1f}"))
            return 0
        if args.command == "pos":
            return pos.run(args)
        if args.command == "key":
            return _issue_key(args)
        if args.command == "person":
            return _create_person(args)
        if args.command == "wallet":
            return _wallet(args)
        return _member(args)
    except MissingSecret as missing:  # the operator's key, to call the services with
        print(f"huiyuan: {missing}", file=sys.stderr)
        return 1
    except grpc.RpcError as error:
        return explain(error)


def explain(error: grpc.RpcError) -> int:
    """A call's error as the user reads it: nobody answered, or a refusal in their
    language (the services' zh-CN LocalizedMessage in Chinese) with each bad field."""
    code, reason, status = parse_rpc_error(error)
    if code in NO_ANSWER and status is None:  # nobody answered: nothing was refused (a change says so itself)
        print(t("no_answer", code=code.name, details=error.details()), file=sys.stderr)
        return 1
    refusal = from_status(status) if status is not None else None
    message = error.details() or code.name
    if refusal is not None:
        message = refusal.zh if cli_text.language() == "zh" and refusal.zh else refusal.en
    print(t("refused", code=code.name, reason=reason or code.name, message=message), file=sys.stderr)
    for violation in getattr(refusal, "violations", []):
        print(
            t("violation", field=violation.field, reason=violation.reason, description=violation.description),
            file=sys.stderr,
        )
    return 1


if __name__ == "__main__":
    sys.exit(main())
