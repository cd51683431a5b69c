"""The campaign service's storage: tables.py (the schema) and one module per concept
with its statements and the mapping of rows to domain objects. With migrations/, the
only code of the service that imports SQLAlchemy or huiyuan.database's statement
helpers."""
