"""The wallet's rules, one module per concept, plain Python: no I/O, no SQL, no gRPC,
no clock (the time is passed in). docs/architecture.md says what belongs here."""
