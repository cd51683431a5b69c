"""How `huiyuan pos` keeps a lost answer from charging twice.

A command that changes something sends one request_id, and every retry of it sends the
same one, so the gateway answers a retry from what it did (AIP-155) and nothing moves
twice. gRPC itself retries a call that hears UNAVAILABLE (the gateway restarting, a
connection reset), a few times over about 3 s, and the till's calls (the member lookup,
a top-up, a checkout, a refund) wait ANSWER_WITHIN_S for their answer, retries
included: a gateway that is down, or frozen (it takes the connection and never
answers), ends the command within about 3 s, not at a far deadline. If no answer comes,
the command cannot know whether the change happened: it says so, prints the request id
and exits with OUTCOME_UNKNOWN. Run again with `--request-id ID`, it finishes the
change or reads its answer; run without it, it would be a second change.

A change that starts with a lookup (a top-up or checkout by card or phone) and gets no
answer to it ends the same way, saying that the change was not sent: a till treats
every exit 75 alike, by running the command again with the id it printed.
"""

import json

import grpc

from huiyuan.runtime.status import NO_ANSWER
from huiyuan_cli.cli_text import t

OUTCOME_UNKNOWN = 75  # EX_TEMPFAIL
ANSWER_WITHIN_S = 3.0  # a till's call: its answer, gRPC's retries included, or no answer
# For every method: a jittered pause of up to 0.2, 0.4, 0.8, 1.6 s between five tries.
RETRY_POLICY = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)
CHANNEL_OPTIONS = [("grpc.service_config", RETRY_POLICY)]


class OutcomeUnknown(Exception):
    def __init__(self, request_id: str, error: grpc.RpcError, sent: bool = True):
        super().__init__(request_id)
        self.request_id, self.error, self.sent = request_id, error, sent

    def explain(self, action: str) -> str:
        heard = t("outcome_heard", code=self.error.code().name, details=self.error.details())
        return heard + t(
            "outcome_unknown" if self.sent else "outcome_not_sent", action=action, request_id=self.request_id
        )


def change(call, request, **kwargs):
    """call(request, **kwargs) for a request that changes something; a lost answer
    raises OutcomeUnknown, a refusal stays the RpcError it is (nothing was done)."""
    return _answered(request.request_id, True, lambda: call(request, **kwargs))


def before_change(request_id: str, read):
    """read(), the lookup a change with this request id starts with; no answer raises
    OutcomeUnknown (the change not sent), a refusal stays the RpcError it is."""
    return _answered(request_id, False, read)


def _answered(request_id: str, sent: bool, act):
    try:
        return act()
    except grpc.RpcError as error:
        if error.code() in NO_ANSWER:
            raise OutcomeUnknown(request_id, error, sent) from error
        raise
