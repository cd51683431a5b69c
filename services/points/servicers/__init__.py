"""The points service's gRPC layer: one module per gRPC service of the contract
(huiyuan.points.v1 has one, PointsService)."""
