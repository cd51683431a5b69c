"""The member service's use cases, one module per thing the chain does with members.
Each runs in the one transaction (`tx`) it is given: it asks storage for what it needs,
asks the domain what to do, and hands storage the writes."""
