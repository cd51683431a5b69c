"""The member service's storage: tables.py (the schema) and one module per concept with
its statements and the mapping of its rows to domain objects. With migrations/, the only
code of the service that speaks SQLAlchemy."""
