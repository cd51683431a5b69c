"""The member service's rules, plain Python with no I/O (no database, gRPC or clock:
the time is passed in), one module per concept, so they can be read and tested alone.
Enum values are the names the contracts use without their prefix.

fields.py      names, free text and partial dates, as every form checks them
org.py         the org tree: HQ, regions, stores, terminals
members.py     members, their profile, tags and the filters that select them
attributes.py  custom attributes a chain defines for its members
cards.py       card types and cards: states, actions, numbers, who may pay
tiers.py       the tier ladder: climbing by spend or top-ups, falling after returns
visits.py      visits and returns, counted per store
top_ups.py     top-ups as the tiers count them
qr.py          the members' QR codes
care.py        member care: day spans, contacts and consent
pins.py        payment PINs
imports.py     the rows of an import file, and a member as a row of an export
reports.py     what each fact adds to the reports' rollups; the members' snapshot
"""
