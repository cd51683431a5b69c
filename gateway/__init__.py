"""Gateway: the API for store terminals, regional offices and HQ (huiyuan.gateway.v1),
with authentication, org scope and the checkout saga coordinator. Implementation comes
in its own issue; for now it serves health and answers UNIMPLEMENTED."""
