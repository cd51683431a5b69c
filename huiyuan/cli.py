"""The `huiyuan` command: run the system, migrate databases, and look members up.

  huiyuan up                      every service on this machine, SQLite, demo data
  huiyuan migrate [SERVICE ...]   apply each service's Alembic migrations
  huiyuan member find --phone P | --card N | --id M
  huiyuan member list [--org PATH] [--limit N]
  huiyuan wallet balance|statement --phone P | --card N | --id M
  huiyuan pos lookup|register|top-up|checkout|receipt ...   a cashier's terminal (see huiyuan.pos)
  huiyuan key issue --org PATH --role ROLE [--label L]   a gateway credential, written
                                  straight to the gateway's database (the first HQ key),
                                  for a node of the org tree where the role works
"""

import argparse
import signal
import sys

import grpc

from huiyuan.runtime.clock import CHAIN_ZONE
from huiyuan.runtime.config import service_address
from huiyuan.runtime.convert import enum_word
from huiyuan.runtime.money import yuan
from huiyuan.runtime.status import NO_ANSWER, from_status, parse_rpc_error


def _member_stub():
    from huiyuan.member.v1 import member_pb2_grpc

    return member_pb2_grpc.MemberServiceStub(grpc.insecure_channel(service_address("member")))


def _print_member(m, tier=None, cards=()):
    from huiyuan.member.v1 import card_pb2

    print(f"{m.name}  {m.phone[:3]}****{m.phone[-4:]}  id {m.member_id}")
    print(f"  home store {m.home_store_path or '-'}   tier {tier.name if tier else '-'}   registered {m.create_time.ToDatetime():%Y-%m-%d}")
    for c in cards:
        print(f"  card {c.card_number}  {enum_word(card_pb2.CardState, c.state)}")


def _member(args) -> int:
    from huiyuan.member.v1 import member_pb2

    stub = _member_stub()
    if args.action == "find":
        request = member_pb2.LookupMemberRequest(phone=args.phone) if args.phone else (
            member_pb2.LookupMemberRequest(card_number=args.card) if args.card else member_pb2.LookupMemberRequest(member_id=args.id or ""))
        response = stub.LookupMember(request, timeout=5)
        _print_member(response.member, response.tier if response.HasField("tier") else None, response.cards)
    else:
        response = stub.ListMembers(member_pb2.ListMembersRequest(
            filter=member_pb2.MemberFilter(org_path=args.org or ""), page_size=args.limit), timeout=5)
        for m in response.members:
            _print_member(m)
    return 0


def _wallet(args) -> int:
    from huiyuan.member.v1 import member_pb2
    from huiyuan.wallet.v1 import wallet_pb2, wallet_pb2_grpc

    request = member_pb2.LookupMemberRequest(phone=args.phone) if args.phone else (
        member_pb2.LookupMemberRequest(card_number=args.card) if args.card else member_pb2.LookupMemberRequest(member_id=args.id or ""))
    member = _member_stub().LookupMember(request, timeout=5).member
    wallet = wallet_pb2_grpc.WalletServiceStub(grpc.insecure_channel(service_address("wallet")))
    b = wallet.GetBalance(wallet_pb2.GetBalanceRequest(member_id=member.member_id), timeout=5).balance
    print(f"{member.name}  stored value {yuan(b.principal_fen + b.bonus_fen)} (principal {yuan(b.principal_fen)}, "
          f"bonus {yuan(b.bonus_fen)}), held {yuan(b.held_fen)}, available {yuan(b.available_fen)}")
    if args.action == "statement":
        entries = wallet.ListEntries(wallet_pb2.ListEntriesRequest(member_id=member.member_id, page_size=args.limit), timeout=5)
        for e in entries.entries:
            kind = enum_word(wallet_pb2.EntryKind, e.kind)
            print(f"  {e.post_time.ToDatetime(tzinfo=CHAIN_ZONE):%Y-%m-%d %H:%M}  {kind:<18} {yuan(e.principal_delta_fen + e.bonus_delta_fen):>10}"
                  f"  balance {yuan(e.balance_after_fen):>10}  {e.store_path}  {e.memo}")
    return 0


def _issue_key(args) -> int:
    from gateway import auth, bootstrap
    from huiyuan.runtime.config import Settings
    from huiyuan.runtime.errors import DomainError

    try:
        key_id, key = bootstrap.issue_key(Settings.from_env("gateway").database_url, args.org, auth.Role(args.role),
                                          args.label, member_database_url=Settings.from_env("member").database_url)
    except DomainError as refusal:  # no such node, or a role that does not work at it: as IssueApiKey says
        print(f"refused: {refusal.code.name} {refusal.reason} {refusal.en}", file=sys.stderr)
        return 1
    print(f"key id {key_id}\napi key {key}   (shown once: keep it safe)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="huiyuan", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run every service on this machine with demo data")
    up.add_argument("--no-demo", action="store_true", help="do not seed demo data")
    mig = sub.add_parser("migrate", help="apply database migrations")
    mig.add_argument("services", nargs="*", help="default: all")
    member = sub.add_parser("member", help="look members up (talks to the member service)")
    member.add_argument("action", choices=["find", "list"])
    member.add_argument("--phone")
    member.add_argument("--card")
    member.add_argument("--id")
    member.add_argument("--org")
    member.add_argument("--limit", type=int, default=20)
    wallet = sub.add_parser("wallet", help="a member's stored value (talks to the member and wallet services)")
    wallet.add_argument("action", choices=["balance", "statement"])
    wallet.add_argument("--phone")
    wallet.add_argument("--card")
    wallet.add_argument("--id")
    wallet.add_argument("--limit", type=int, default=20)
    from huiyuan import pos

    pos.add_parser(sub)
    key = sub.add_parser("key", help="issue a gateway credential directly (bootstrap)")
    key.add_argument("action", choices=["issue"])
    key.add_argument("--org", required=True)
    key.add_argument("--role", required=True, choices=["TERMINAL", "STORE_MANAGER", "REGIONAL_MANAGER", "HQ_ADMIN"])
    key.add_argument("--label", default="")
    args = parser.parse_args(argv)
    from huiyuan import launcher

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
                parser.error(f"unknown services: {', '.join(sorted(unknown))}")
            launcher.migrate_all(args.services or list(launcher.SERVICES))
            return 0
        if args.command == "pos":
            return pos.run(args)
        if args.command == "key":
            return _issue_key(args)
        if args.command == "wallet":
            return _wallet(args)
        return _member(args)
    except grpc.RpcError as error:
        code, reason, status = parse_rpc_error(error)
        if code in NO_ANSWER and status is None:  # nobody answered: nothing was refused (a change says so itself)
            print(f"no answer: {code.name} {error.details()}; is `huiyuan up` running? try again", file=sys.stderr)
            return 1
        print(f"refused: {code.name} {reason} {status.message if status else error.details()}", file=sys.stderr)
        if status is not None:
            for violation in getattr(from_status(status), "violations", []):
                print(f"  {violation.field}: {violation.reason} - {violation.description}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
