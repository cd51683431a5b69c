"""Campaign service: contract huiyuan.campaign.v1 (campaigns, pricing, coupons, their
reservations and budgets). Its folders are docs/architecture.md's."""
