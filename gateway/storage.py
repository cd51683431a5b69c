"""Gateway tables: credentials (and, with the checkout saga, its log)."""

from huiyuan.runtime import idempotency
from huiyuan.runtime.db import new_metadata
from gateway import auth

metadata = new_metadata()
api_keys = auth.define_table(metadata)
idempotency_keys = idempotency.define_table(metadata)
