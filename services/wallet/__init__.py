"""Wallet service: contract huiyuan.wallet.v1, stored value and count cards (计次卡).
Its anatomy is docs/architecture.md's."""
