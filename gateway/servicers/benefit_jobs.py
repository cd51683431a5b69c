"""BenefitJobService: HQ runs the benefit grants job (use_cases/benefit_grants.py)."""

from gateway.domain.callers import Role
from gateway.servicers.auth import Authenticator
from gateway.use_cases import benefit_grants
from huiyuan.gateway.v1 import benefit_jobs_pb2 as pb, benefit_jobs_pb2_grpc
from huiyuan.runtime.clock import today
from huiyuan.runtime.convert import calendar_date
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.requests import check_request_id


class BenefitJobServicer(benefit_jobs_pb2_grpc.BenefitJobServiceServicer):
    def __init__(self, auth: Authenticator, services):
        self.auth = auth
        self.services = services

    async def RunBenefitGrants(self, request, context):
        await self.auth.caller(context, {Role.HQ_ADMIN})
        v = Violations()
        check_request_id(v, request.request_id)
        day = calendar_date(request.as_of_date) if request.HasField("as_of_date") else today()
        v.check(day is not None, "as_of_date", "DATE_INVALID", "as_of_date must be a full calendar day")
        v.raise_if_any()
        assert day is not None
        outcome = await benefit_grants.run(self.services, day, request.request_id)
        return pb.RunBenefitGrantsResponse(planned=outcome.planned, issued=outcome.issued, refused=outcome.refused)
