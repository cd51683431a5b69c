"""What the checkout and refund sagas log and how they read a service's answer.

A saga logs under its own id (an order's, or a refund's) the decision its first run
made and the steps a service refused or an operator settled; every call a step makes
carries an id derived from the saga's id and the step, the same on every run."""

from huiyuan.runtime.errors import DomainError, Internal, Unavailable

DECISION = "decision"  # the log step of what the order's first run decided
# The steps of a refund an operator may settle (use_cases/settlement.py), as its saga log names them.
REFUND_WALLET, REFUND_POINTS = "refund-wallet", "refund-points"


def step_id(saga_id: str, step: str) -> str:
    """The id a saga step's call carries: the same on every run of the saga."""
    return f"{saga_id}:{step}"[:64]


def membership_step(line_index: int) -> str:
    """The settle step giving the member the paid membership term the order's line
    (by its index) sold."""
    return f"membership-{line_index}"


# Saga log steps of a settle step that a service refused, and of an operator's settling.
def refused_step(step: str) -> str:
    return f"refused:{step}"


def settled_step(step: str) -> str:
    return f"settled:{step}"


def is_refusal(outcome: object) -> bool:
    """A service's answer "no", as opposed to no answer (UNAVAILABLE) or a failure of
    its own (INTERNAL: a bug there, nothing says what it did). A saga stops at either of
    those unfinished, for the next run; it never reads them as a refusal."""
    return isinstance(outcome, DomainError) and not isinstance(outcome, (Unavailable, Internal))
