"""What the points service does, one module per thing: each runs in the one `tx` it
is given, asks storage/ for what it needs, domain/ what to do, and hands storage the
writes. No SQLAlchemy here."""
