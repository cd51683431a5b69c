"""Top-up packages: created, listed, ended early."""

from dataclasses import replace
from datetime import datetime

from huiyuan.database import Transaction
from huiyuan.runtime.validity import Ending, shortened_end
from services.wallet.domain.packages import TopUpPackage, applying, check_may_manage, on_line_of, package_not_found
from services.wallet.storage import packages


async def create_package(tx: Transaction, package: TopUpPackage, now) -> TopUpPackage:
    await packages.add_package(tx, package, now)
    return package


async def package_by_id(tx: Transaction, package_id: str) -> TopUpPackage:
    found = await packages.package_by_id(tx, package_id)
    if found is None:
        raise package_not_found(package_id)
    return found


async def packages_at(tx: Transaction, store_path: str, at) -> list[TopUpPackage]:
    """The packages a top-up at this store gets at this moment."""
    return applying(await packages.all_packages(tx), store_path, at)


async def packages_on_line(tx: Transaction, org_path: str, at, show_ended: bool) -> list[TopUpPackage]:
    return on_line_of(await packages.all_packages(tx), org_path, at, show_ended)


async def end_package(tx: Transaction, package_id: str, ending: Ending, now: datetime) -> TopUpPackage:
    """Shorten a package so that top-ups from its new end get no bonus from it
    (huiyuan/runtime/validity.py: its steps never change)."""
    package = await packages.package_by_id(tx, package_id, lock=True)
    if package is None:
        raise package_not_found(package_id)
    check_may_manage(package.org_path, ending.actor_path)
    end = shortened_end(package.start_time, package.end_time, ending.at(now), now, kind="package", kind_zh="充值套餐")
    await packages.set_end(tx, package_id, end, ending.operator)
    return replace(package, end_time=end, ended_by=ending.operator)
