"""The points service's storage: the schema (tables.py) and, one module per concept,
the statements and the mapping of rows to domain objects. With migrations/, the only
code of the service that imports SQLAlchemy or the statement helpers of
huiyuan.database."""
