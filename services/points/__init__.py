"""Points service: contract huiyuan.points.v1 (accrual rules, lots and their expiry,
offset at checkout, reversals, the points mall). app.py wires it; servicers/ speaks
gRPC, use_cases/ does what the chain asks in one transaction each, domain/ holds the
rules and storage/ the tables and statements (docs/architecture.md)."""
