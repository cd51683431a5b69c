"""Campaign service: contract huiyuan.campaign.v1. Implementation comes in its own issue;
for now it serves health and answers UNIMPLEMENTED."""
