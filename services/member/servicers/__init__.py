"""gRPC servicers of the member service, one module per gRPC service of the contract:
they check the requests' shape, call a use case (mutations through Idempotency, reads
in `database.reading()`) and translate the answer (convert.py)."""
