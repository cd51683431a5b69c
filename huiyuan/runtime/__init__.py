"""The one runtime every service and the gateway use: configuration, storage,
migrations, errors, idempotency, logs, traces and the gRPC server itself."""
