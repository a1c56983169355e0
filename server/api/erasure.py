"""Homeward's erasure of one returnee: `POST /v1/projects/{id}/erasures`.

The body names the returnee by a case question and its answer
(`{"caseField": "case_id", "caseValue": "R-001"}`), by their entity
(`{"entityUuid": "..."}`: the entity and every submission that made or changed
it), or one submission (`{"xmlFormId": "intake", "instanceId": "uuid:..."}`).
Everything found is removed at once and for good (server.services.erasure),
entities the submissions made or changed included; the answer counts it.
Project managers and administrators only (those who may delete submissions).
"""

from __future__ import annotations

from litestar import Router, post
from litestar.params import FromPath, JSONBody

from server import problems
from server.api.common import check
from server.api.shapes import ApiInput, ApiModel
from server.requests import AnyRequest, require_principal, runtime_of
from server.services import erasure, reviews
from server.services.forms import find_form


class ErasureIn(ApiInput):
    case_field: str | None = None
    case_value: str | None = None
    xml_form_id: str | None = None
    instance_id: str | None = None
    entity_uuid: str | None = None


class ErasureOut(ApiModel):
    submissions: int
    files: int
    entities: int


@post("/projects/{project_id:int}/erasures", operation_id="eraseReturnee", status_code=200)
async def erase(
    request: AnyRequest, project_id: FromPath[int], data: JSONBody[ErasureIn]
) -> ErasureOut:
    rt = runtime_of(request)
    if data.case_value is not None and not data.case_value.strip():
        raise problems.unexpected_value("caseValue", data.case_value, "it is empty.")
    async with rt.read() as db:
        principal = await require_principal(request, db)
        check(principal, "submission.delete", project_id=project_id)
        check(principal, "entity.delete", project_id=project_id)
        if data.entity_uuid:
            ids = None
        elif data.case_field and data.case_value is not None:
            ids = await erasure.case_submissions(db, project_id, data.case_field, data.case_value)
        elif data.xml_form_id and data.instance_id:
            form = await find_form(db, project_id, data.xml_form_id)
            submission, _ = await reviews.find_submission(db, form, data.instance_id)
            ids = [submission.id]
        else:
            raise problems.unexpected_value(
                "erasure",
                "",
                "name the returnee with caseField and caseValue, or entityUuid, or one "
                "submission with xmlFormId and instanceId.",
            )
    if ids is None:
        assert data.entity_uuid is not None
        erased = await erasure.erase_entity(rt, project_id, data.entity_uuid, by=principal.actor_id)
    else:
        erased = await erasure.erase_submissions(rt, project_id, ids, by=principal.actor_id)
    return ErasureOut(submissions=erased.submissions, files=erased.files, entities=erased.entities)


router = Router("/v1", route_handlers=[erase], tags=["erasure"])
