"""Top-up packages: their steps as JSON pairs, their tenders as names."""

from sqlalchemy import insert, select, update

from huiyuan.database import Transaction
from services.wallet.domain.packages import PackageStep, TopUpPackage
from services.wallet.domain.top_ups import Tender
from services.wallet.storage.tables import top_up_packages


def _to_package(row) -> TopUpPackage:
    return TopUpPackage(
        row.package_id,
        row.name,
        row.org_path,
        [PackageStep(t, b) for t, b in row.steps],
        row.start_time,
        row.end_time,
        row.ended_by or "",
        tuple(Tender(t) for t in row.tenders or ()),
    )


async def all_packages(tx: Transaction) -> list[TopUpPackage]:
    """Every package, by id (a chain has tens, not thousands)."""
    rows = await tx.execute(select(top_up_packages).order_by(top_up_packages.c.package_id))
    return [_to_package(row) for row in rows]


async def package_by_id(tx: Transaction, package_id: str, lock: bool = False) -> TopUpPackage | None:
    query = select(top_up_packages).where(top_up_packages.c.package_id == package_id)
    row = (await tx.execute(query.with_for_update() if lock else query)).first()
    return None if row is None else _to_package(row)


async def add_package(tx: Transaction, package: TopUpPackage, now) -> None:
    await tx.execute(
        insert(top_up_packages).values(
            package_id=package.package_id,
            name=package.name.strip(),
            org_path=package.org_path,
            steps=[[s.threshold_fen, s.bonus_fen] for s in package.steps],
            start_time=package.start_time,
            end_time=package.end_time,
            tenders=[t.value for t in package.tenders],
            create_time=now,
        )
    )


async def set_end(tx: Transaction, package_id: str, end, ended_by: str) -> None:
    await tx.execute(
        update(top_up_packages)
        .where(top_up_packages.c.package_id == package_id)
        .values(end_time=end, ended_by=ended_by)
    )
