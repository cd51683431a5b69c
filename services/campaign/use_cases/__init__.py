"""What the campaign service does, one module per thing: campaigns, templates,
issuing, new-member gifts, quotes, a member's coupons, reservations, budgets,
redemptions, returns and stats. Each runs in one transaction (`tx`) or one reading,
asks storage/ for what it needs and domain/ what to do. No SQLAlchemy here."""
