"""The gateway's gRPC layer: GatewayService (gateway.py) and the services' calls passed
through within the caller's scope (passthrough.py)."""
