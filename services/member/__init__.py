"""Member service: org tree, members, cards, tiers, imports and visit statistics.

app.py      wiring: the servicers, migrations and name of the process
servicers/  the gRPC layer: checks requests' shape, calls a use case, translates
use_cases/  one module per thing the chain does, each in one transaction
domain/     the rules, plain Python with no I/O
storage/    tables.py and the statements, one module per concept
migrations/ Alembic, one revision per change of the schema
"""
