"""Top-up packages: the bonus a top-up earns, by steps of the amount loaded."""

from dataclasses import dataclass
from datetime import datetime

from huiyuan.runtime.errors import NotFound, Violations
from huiyuan.runtime.requests import check_in_scope, is_under, on_line
from huiyuan.runtime.validity import has_ended
from services.wallet.domain.top_ups import Tender

# What a package with no tenders named applies to: money a member pays at a till or
# online. A company's batch is left out: its terms are negotiated, not the shelf offer.
COUNTER_TENDERS = frozenset(Tender) - {Tender.ENTERPRISE}


@dataclass(frozen=True)
class PackageStep:
    threshold_fen: int
    bonus_fen: int


@dataclass
class TopUpPackage:
    package_id: str
    name: str
    org_path: str
    steps: list[PackageStep]
    start_time: datetime | None = None
    end_time: datetime | None = None
    ended_by: str = ""  # who ended it early; its steps never change
    tenders: tuple[Tender, ...] = ()  # none named: COUNTER_TENDERS

    def applies(self, store_path: str, at: datetime) -> bool:
        started = self.start_time is None or self.start_time <= at
        return is_under(store_path, self.org_path) and started and not has_ended(self.end_time, at)

    def takes(self, tender: Tender) -> bool:
        return tender in (self.tenders or COUNTER_TENDERS)

    def bonus_for(self, amount: int) -> int:
        """The bonus of the highest step the amount reaches (0 below the first)."""
        reached = [s.bonus_fen for s in self.steps if amount >= s.threshold_fen]
        return max(reached, default=0)


def check_package(v: Violations, package: TopUpPackage, prefix: str = "package.") -> None:
    v.check(
        0 < len(package.name.strip()) <= 64, f"{prefix}name", "NAME_REQUIRED", "name is required, at most 64 characters"
    )
    v.check(bool(package.steps), f"{prefix}steps", "STEPS_REQUIRED", "a package needs at least one step")
    thresholds = [s.threshold_fen for s in package.steps]
    for i, step in enumerate(package.steps):
        field = f"{prefix}steps[{i}]"
        v.check(step.threshold_fen > 0, f"{field}.threshold_fen", "THRESHOLD_INVALID", "threshold_fen must be > 0")
        v.check(
            0 <= step.bonus_fen <= step.threshold_fen,
            f"{field}.bonus_fen",
            "BONUS_INVALID",
            "bonus_fen must be between 0 and the threshold",
        )
    v.check(
        thresholds == sorted(set(thresholds)),
        f"{prefix}steps",
        "STEPS_NOT_ASCENDING",
        "steps must have strictly ascending thresholds",
    )
    bonuses = [s.bonus_fen for s in package.steps]
    v.check(
        bonuses == sorted(bonuses), f"{prefix}steps", "BONUS_NOT_ASCENDING", "a higher step must not give less bonus"
    )
    if package.start_time and package.end_time:
        v.check(
            package.start_time < package.end_time,
            f"{prefix}end_time",
            "DATES_REVERSED",
            "end_time must be after start_time",
        )
    v.check(
        len(set(package.tenders)) == len(package.tenders),
        f"{prefix}tenders",
        "TENDERS_REPEATED",
        "name each tender at most once",
    )


def best_package(
    packages: list[TopUpPackage], store_path: str, amount: int, at: datetime, tender: Tender
) -> tuple[TopUpPackage, int] | None:
    """Packages do not stack: the one that gives the most bonus applies (the nearest
    scope, then the oldest id, on a tie, so the choice never depends on edit order)."""
    offers = [
        (p.bonus_for(amount), p.org_path.count("/"), p)
        for p in packages
        if p.applies(store_path, at) and p.takes(tender)
    ]
    offers = [o for o in offers if o[0] > 0]
    if not offers:
        return None
    bonus, _, package = min(offers, key=lambda o: (-o[0], -o[1], o[2].package_id))
    return package, bonus


def applying(packages: list[TopUpPackage], store_path: str, at: datetime) -> list[TopUpPackage]:
    """The packages a top-up at this store gets at this moment."""
    return [p for p in packages if p.applies(store_path, at)]


def on_line_of(packages: list[TopUpPackage], org_path: str, at: datetime, show_ended: bool) -> list[TopUpPackage]:
    """A back office's view: the packages of the node's line (every one without org_path),
    scheduled ones included, ended ones only with show_ended."""
    return [
        p
        for p in packages
        if (not org_path or on_line(p.org_path, org_path)) and (show_ended or not has_ended(p.end_time, at))
    ]


def check_may_manage(org_path: str, actor_org_path: str) -> None:
    """A back office manages the packages of its own node and the nodes under it."""
    check_in_scope(org_path, actor_org_path, "package", "套餐")


def package_not_found(package_id: str) -> NotFound:
    return NotFound("PACKAGE_NOT_FOUND", "No such top-up package.", "充值套餐不存在。", package_id=package_id)
