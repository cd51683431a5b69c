"""How `huiyuan pos` keeps a lost answer from charging twice.

A command that changes something sends one request_id, and every retry of it sends the
same one, so the gateway answers a retry from what it did (AIP-155) and nothing moves
twice. gRPC itself retries a call that hears UNAVAILABLE (the gateway restarting, a
connection reset), a few times over about 3 s. If no answer comes, the command cannot
know whether the change happened: it says so, prints the request id and exits with
OUTCOME_UNKNOWN. Run again with `--request-id ID`, it finishes the change or reads
its answer; run without it, it would be a second change.
"""

import json

import grpc

from huiyuan.runtime.status import NO_ANSWER

OUTCOME_UNKNOWN = 75  # EX_TEMPFAIL
# For every method: a jittered pause of up to 0.2, 0.4, 0.8, 1.6 s between five tries.
RETRY_POLICY = json.dumps({"methodConfig": [{"name": [{}], "retryPolicy": {
    "maxAttempts": 5, "initialBackoff": "0.2s", "maxBackoff": "2s", "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"]}}]})
CHANNEL_OPTIONS = [("grpc.service_config", RETRY_POLICY)]


class OutcomeUnknown(Exception):
    def __init__(self, request_id: str, error: grpc.RpcError):
        super().__init__(request_id)
        self.request_id, self.error = request_id, error

    def explain(self, action: str) -> str:
        return (f"no answer from the gateway ({self.error.code().name}: {self.error.details()}).\n"
                f"Whether the {action} went through is not known yet. Run the same command again with\n"
                f"  --request-id {self.request_id}\n"
                "to finish it or read its answer: it cannot be done twice. Without it, it could be.")


def change(call, request, **kwargs):
    """call(request, **kwargs) for a request that changes something; a lost answer
    raises OutcomeUnknown, a refusal stays the RpcError it is (nothing was done)."""
    try:
        return call(request, **kwargs)
    except grpc.RpcError as error:
        if error.code() in NO_ANSWER:
            raise OutcomeUnknown(request.request_id, error) from error
        raise
