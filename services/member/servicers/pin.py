"""PaymentPinService: the gRPC face of payment PINs and payment credentials
(services/member/pins.py). Nothing here logs, stores or echoes a PIN: the idempotency
table keeps requests' digests and answers without it (huiyuan/runtime/secrets.py)."""

import hashlib

from huiyuan.common.v1 import credential_pb2
from huiyuan.member.v1 import payment_pin_pb2 as pb
from huiyuan.member.v1 import payment_pin_pb2_grpc
from huiyuan.runtime.convert import timestamp
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import Violations
from huiyuan.database.idempotency import Idempotency, check_request_id
from huiyuan.runtime.requests import check_actor
from huiyuan.runtime.server import ServiceContext
from services.member import domain, pins
from services.member.members import require_member


def _state(state: pins.PinState) -> pb.PaymentPinState:
    return pb.PaymentPinState(
        member_id=state.member_id, pin_set=state.pin_hash is not None, failed_tries=state.failed_tries,
        unlock_time=timestamp(state.locked_until) if state.locked_until else None,
        update_time=timestamp(state.update_time) if state.update_time else None)


def _check_credential(v: Violations, credential: credential_pb2.PaymentCredential, field: str) -> None:
    kind = credential.WhichOneof("proof")
    if kind == "card_number":
        v.check(bool(domain.CARD_NUMBER.match(credential.card_number)), f"{field}.card_number", "CARD_NUMBER_INVALID",
                "card_number must be 8 to 20 digits")
    elif kind == "pin":
        v.check(bool(pins.PIN.match(credential.pin)), f"{field}.pin", "PIN_INVALID", "a PIN is 6 digits")


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
            raise pins.credential_required()
        if kind != "pin":
            qr_member = domain.verify_qr_token(credential.qr_token, self.qr_secret, now) if kind == "qr_token" else ""
            async with self.database.reading() as db:
                await require_member(db, member_id)
            await pins.check_card_or_qr(self.database, member_id, card_number=credential.card_number,
                                        qr_member_id=qr_member, now=now)
            return pb.VerifyPaymentCredentialResponse(verified=True)
        tried = pb.VerifyPaymentCredentialRequest(request_id=request.request_id, member_id=member_id,
                                                  credential=credential)
        answer = await pins.try_pin(
            self.database, self.idempotency, "VerifyPaymentCredential", tried, member_id, credential.pin, now,
            pb.VerifyPaymentCredentialResponse,
            lambda after, right: pb.VerifyPaymentCredentialResponse(
                verified=right, tries_left=after.tries_left,
                unlock_time=timestamp(after.locked_until) if after.locked_until else None))
        if answer.verified:
            return answer
        if answer.HasField("unlock_time"):  # this try locked it
            raise pins.pin_locked(answer.unlock_time.ToDatetime(tzinfo=now.tzinfo))
        raise pins.pin_incorrect(answer.tries_left)

    async def SetPaymentPin(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        v.check(bool(request.member_id), "member_id", "MEMBER_ID_REQUIRED", "member_id is required")
        pins.check_pin(v, request.pin, "pin")
        _check_credential(v, request.proof, "proof")
        v.raise_if_any()
        proof = pb.VerifyPaymentCredentialRequest(request_id=proof_request_id(request.request_id))
        await self._verify(proof, request.member_id, request.proof)
        pin_hash = await pins.hashed_in_thread(request.pin)
        now = utcnow()

        async def work(db):
            return pb.SetPaymentPinResponse(state=_state(await pins.set_pin(db, request.member_id, pin_hash, now)))

        return await self.idempotency.run(request, pb.SetPaymentPinResponse, work)

    async def ResetPaymentPin(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        v.check(bool(request.member_id), "member_id", "MEMBER_ID_REQUIRED", "member_id is required")
        v.raise_if_any()
        now = utcnow()

        async def work(db):
            return pb.ResetPaymentPinResponse(state=_state(await pins.reset_pin(db, request.member_id, request.clear, now)))

        return await self.idempotency.run(request, pb.ResetPaymentPinResponse, work)
