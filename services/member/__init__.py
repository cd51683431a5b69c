"""Member service: org tree, members, cards, tiers, imports and visit statistics.

domain.py   the rules, plain Python
storage.py  tables and the queries that read and write them
service.py  the use cases, one transaction each
servicers/  gRPC translation only
files.py    CSV and XLSX reading and writing for import and export
"""
