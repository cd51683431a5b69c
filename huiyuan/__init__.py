"""huiyuan (会员): the membership system of a store chain.

This package holds what every service shares: the runtime (huiyuan.runtime), the
database behind one door (huiyuan.database) and, generated on install, the gRPC
contracts (huiyuan.<service>.v1). The command line is huiyuan_cli.
"""
