"""The custom attributes' definitions."""

from collections.abc import Collection

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from huiyuan.database import Transaction, violated_unique
from services.member.domain.attributes import (
    AttributeDefinition,
    AttributeType,
    attribute_exists,
)
from services.member.storage.tables import attribute_definitions


def to_attribute_definition(row) -> AttributeDefinition:
    return AttributeDefinition(
        row.key, row.display_name, AttributeType(row.type), list(row.choices or []), row.required
    )


async def definitions_after(tx: Transaction, after_key: str | None, limit: int) -> list[AttributeDefinition]:
    """By key; those after after_key."""
    query = select(attribute_definitions).order_by(attribute_definitions.c.key).limit(limit)
    if after_key is not None:
        query = query.where(attribute_definitions.c.key > after_key)
    return [to_attribute_definition(r) for r in await tx.execute(query)]


async def definitions_by_key(tx: Transaction, keys: Collection[str] | None = None) -> dict[str, AttributeDefinition]:
    """All definitions, or only those of the given keys (none read when keys is empty)."""
    query = select(attribute_definitions).order_by(attribute_definitions.c.key)
    if keys is not None:
        if not keys:
            return {}
        query = query.where(attribute_definitions.c.key.in_(sorted(keys)))
    return {r.key: to_attribute_definition(r) for r in await tx.execute(query)}


async def insert_definition(tx: Transaction, definition: AttributeDefinition) -> None:
    try:
        await tx.execute(
            insert(attribute_definitions).values(
                key=definition.key,
                display_name=definition.display_name,
                type=definition.type.value,
                choices=definition.choices,
                required=definition.required,
            )
        )
    except IntegrityError as error:
        if violated_unique(error, "attribute_definitions", "key"):
            raise attribute_exists(definition.key) from None
        raise
