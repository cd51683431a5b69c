"""A service whose contract exists but whose implementation comes in a later issue.

It runs like any other (health, reflection, its own database and migrations) and
answers every RPC with UNIMPLEMENTED, through the generated base servicer."""

from pathlib import Path

from huiyuan.runtime import idempotency
from huiyuan.runtime.db import new_metadata
from huiyuan.runtime.server import ServiceSpec


def placeholder_spec(name: str, pb2_module, grpc_module, service: str, package_dir: Path) -> tuple[ServiceSpec, object]:
    """(spec, metadata) for a service that only serves UNIMPLEMENTED for now."""
    metadata = new_metadata()
    idempotency.define_table(metadata)
    base = getattr(grpc_module, f"{service}Servicer")
    add = getattr(grpc_module, f"add_{service}Servicer_to_server")
    spec = ServiceSpec(
        name=name,
        service_names=[pb2_module.DESCRIPTOR.services_by_name[service].full_name],
        migrations_dir=package_dir / "migrations",
        register=lambda server, ctx: add(base(), server),
    )
    return spec, metadata
