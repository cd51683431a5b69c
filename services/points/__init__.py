"""Points service: contract huiyuan.points.v1. Implementation comes in its own issue;
for now it serves health and answers UNIMPLEMENTED."""
