"""Gateway: the API for store terminals, regional offices and HQ (huiyuan.gateway.v1),
with authentication, org scope, the services' calls passed through, and the checkout
and refund sagas. Its anatomy is every service's (docs/architecture.md): app.py,
servicers/, use_cases/, domain/, storage/, migrations/."""
