"""gRPC servicers of the member service: they check and translate requests, call the
use cases inside a transaction (mutations through Idempotency) and translate back."""
