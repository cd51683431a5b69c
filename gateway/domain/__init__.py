"""The gateway's pure rules: callers and their scope, routes of the pass-through, order
and refund states, saga steps, tenders, limits. No I/O (docs/architecture.md)."""
