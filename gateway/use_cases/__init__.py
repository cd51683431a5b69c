"""What the gateway does, one module per thing: the checkout and refund sagas, orders,
settlement, top-ups, batches, segments, reports, the audit trail, keys."""
