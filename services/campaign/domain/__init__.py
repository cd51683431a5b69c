"""The campaign service's rules, with no I/O: campaigns and their kinds (campaigns.py),
rates (rates.py), pricing and apportioning (pricing.py), coupons (coupons.py),
budgets and limits (budgets.py), reservations (reservations.py) and returns
(returns.py). The time is always passed in."""
