"""The gateway's tables (tables.py) and one module per concept with its statements."""
