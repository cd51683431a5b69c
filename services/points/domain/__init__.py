"""The points service's rules, one module per concept, with no I/O (no SQL, no gRPC,
no clock: the time is passed in): lots and their expiry (lots.py), members' balances
and debt (members.py), accrual rules (rules.py), the offset policy (offsets.py), holds
(holds.py), the mall (gifts.py), reversals and adjustments (reversals.py)."""
