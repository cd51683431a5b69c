"""The `huiyuan` command: run the system, migrate databases, and look members up.

  huiyuan up                      every service on this machine, SQLite, demo data
  huiyuan migrate [SERVICE ...]   apply each service's Alembic migrations
  huiyuan member find --phone P | --card N | --id M
  huiyuan member list [--org PATH] [--limit N]
"""

import argparse
import sys

import grpc

from huiyuan.runtime.config import service_address
from huiyuan.runtime.status import parse_rpc_error


def _member_stub():
    from huiyuan.member.v1 import member_pb2_grpc

    return member_pb2_grpc.MemberServiceStub(grpc.insecure_channel(service_address("member")))


def _print_member(m, tier=None, cards=()):
    from huiyuan.member.v1 import card_pb2

    print(f"{m.name}  {m.phone[:3]}****{m.phone[-4:]}  id {m.member_id}")
    print(f"  home store {m.home_store_path or '-'}   tier {tier.name if tier else '-'}   registered {m.create_time.ToDatetime():%Y-%m-%d}")
    for c in cards:
        print(f"  card {c.card_number}  {card_pb2.CardState.Name(c.state).removeprefix('CARD_STATE_')}")


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
    args = parser.parse_args(argv)
    from huiyuan import launcher

    try:
        if args.command == "up":
            return launcher.up(seed=not args.no_demo)
        if args.command == "migrate":
            unknown = set(args.services) - set(launcher.SERVICES)
            if unknown:
                parser.error(f"unknown services: {', '.join(sorted(unknown))}")
            launcher.migrate_all(args.services or list(launcher.SERVICES))
            return 0
        return _member(args)
    except grpc.RpcError as error:
        code, reason, status = parse_rpc_error(error)
        print(f"refused: {code.name} {reason} {status.message if status else error.details()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
