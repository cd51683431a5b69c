"""PaymentPinService: the gRPC face of payment PINs and payment credentials
(use_cases/pins.py). Nothing here logs, stores or echoes a PIN: the idempotency
table keeps requests' digests and answers without it (huiyuan/runtime/secrets.py)."""

import hashlib

from huiyuan.common.v1 import credential_pb2
from huiyuan.database import Idempotency
from huiyuan.member.v1 import payment_pin_pb2 as pb, payment_pin_pb2_grpc
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.convert import timestamp
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.requests import check_actor, check_request_id
from huiyuan.runtime.server import ServiceContext
from services.member.domain.cards import CARD_NUMBER
from services.member.domain.pins import (
    PIN,
    check_pin,
    credential_required,
    refuse_wrong_try,
)
from services.member.servicers import convert
from services.member.use_cases import pins


def _check_credential(v: Violations, credential: credential_pb2.PaymentCredential, field: str) -> None:
    kind = credential.WhichOneof("proof")
    if kind == "card_number":
        v.check(
            bool(CARD_NUMBER.match(credential.card_number)),
            f"{field}.card_number",
            "CARD_NUMBER_INVALID",
            "card_number must be 8 to 20 digits",
        )
    elif kind == "pin":
        v.check(bool(PIN.match(credential.pin)), f"{field}.pin", "PIN_INVALID", "a PIN is 6 digits")


def proof_request_id(request_id: str) -> str:
    """The id under which SetPaymentPin's proof, when a PIN, is tried (and counted) once."""
    return "pin-proof-" + hashlib.sha256(request_id.encode()).hexdigest()[:40]


class PaymentPinServicer(payment_pin_pb2_grpc.PaymentPinServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency):
        self.database = ctx.database
        self.idempotency = idempotency
        self.qr_secret = ctx.settings.qr_secret

    async def VerifyPaymentCredential(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(bool(request.member_id), "member_id", "MEMBER_ID_REQUIRED", "member_id is required")
        _check_credential(v, request.credential, "credential")
        v.raise_if_any()
        return await self._verify(request, request.member_id, request.credential)

    async def _verify(self, request, member_id: str, credential) -> pb.VerifyPaymentCredentialResponse:
        """A card or QR code is checked as it is (nothing to count); a PIN is tried once
        for the request's id, and a wrong one refused after its count is kept."""
        now = utcnow()
        kind = credential.WhichOneof("proof")
        if kind is None:
            raise credential_required()
        if kind != "pin":
            await pins.verify_card_or_qr(
                self.database,
                member_id,
                card_number=credential.card_number,
                qr_token=credential.qr_token if kind == "qr_token" else None,
                qr_secret=self.qr_secret,
                now=now,
            )
            return pb.VerifyPaymentCredentialResponse(verified=True)
        tried = pb.VerifyPaymentCredentialRequest(
            request_id=request.request_id, member_id=member_id, credential=credential
        )
        checked = await pins.check_before_try(self.database, member_id, credential.pin, now)

        async def work(tx):
            after, right = await pins.try_pin(tx, member_id, credential.pin, now, checked)
            return pb.VerifyPaymentCredentialResponse(
                verified=right,
                tries_left=after.tries_left,
                unlock_time=timestamp(after.locked_until) if after.locked_until else None,
            )

        # Counted once per request_id, under VerifyPaymentCredential whichever RPC asks
        # (SetPaymentPin's proof too): the stored answer is the try's, right or wrong.
        answer = await self.idempotency.run(tried, pb.VerifyPaymentCredentialResponse, work, "VerifyPaymentCredential")
        refuse_wrong_try(
            answer.verified,
            answer.tries_left,
            answer.unlock_time.ToDatetime(tzinfo=now.tzinfo) if answer.HasField("unlock_time") else None,
        )
        return answer

    async def SetPaymentPin(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        v.check(bool(request.member_id), "member_id", "MEMBER_ID_REQUIRED", "member_id is required")
        check_pin(v, request.pin, "pin")
        _check_credential(v, request.proof, "proof")
        v.raise_if_any()
        proof = pb.VerifyPaymentCredentialRequest(request_id=proof_request_id(request.request_id))
        await self._verify(proof, request.member_id, request.proof)
        pin_hash = await pins.hashed_in_thread(request.pin)
        now = utcnow()

        async def work(tx):
            return pb.SetPaymentPinResponse(
                state=convert.pin_state(await pins.set_pin(tx, request.member_id, pin_hash, now))
            )

        return await self.idempotency.run(request, pb.SetPaymentPinResponse, work)

    async def ResetPaymentPin(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        v.check(bool(request.member_id), "member_id", "MEMBER_ID_REQUIRED", "member_id is required")
        v.raise_if_any()
        now = utcnow()

        async def work(tx):
            return pb.ResetPaymentPinResponse(
                state=convert.pin_state(await pins.reset_pin(tx, request.member_id, request.clear, now))
            )

        return await self.idempotency.run(request, pb.ResetPaymentPinResponse, work)
