# ruff: noqa: E501 - the table keeps one route per line
"""Submission routes against Central's documented answers: submissions, their
versions, attachments, reviews, comments and audits, the exports, the OData feed
and the OpenRosa submission routes Collect posts to.

The GeoJSON export is checked on ``spots``, a form with a geopoint question.
"""

from __future__ import annotations

from typing import Any

import pytest

from server.services import export_runs
from tests.server.conftest import World, submission_xml
from tests.server.contract import (
    XML_TYPES,
    AcceptedFinding,
    Actor,
    CheckReport,
    CheckRun,
    CleaningEntry,
    Comment,
    Contract,
    DiffValue,
    ExportJob,
    ExtendedAudit,
    ExtendedComment,
    ExtendedSubmission,
    ExtendedSubmissionVersion,
    Fail,
    Finding,
    Key,
    ODataRows,
    Ok,
    StoredCheckSettings,
    Submission,
    SubmissionAttachment,
    SubmissionVersion,
    Success,
    check_failure,
    check_success,
    ids,
)
from tests.server.test_authorisation import (
    KEY,
    OPENROSA,
    OPENROSA_ONLY,
    PHOTO,
    TEST,
    XML,
    Ctx,
    F,
    P,
    S,
    build,
    cleaning_entry,
    cleaning_upload,
    edit_of_current,
    fresh_cleaning_entry,
    fresh_deleted_submission,
    fresh_draft_token,
    fresh_export_job,
    fresh_finding,
    fresh_submission,
    fresh_submission_with_photo,
    given,
    json_body,
    new_submission,
    ok,
    openrosa_submission,
)

EXTENDED = {"X-Extended-Metadata": "true"}


async def finished_export_job(ctx: Ctx) -> dict[str, str]:
    made = await fresh_export_job(ctx)
    while await export_runs.run_waiting_exports(ctx.world.runtime):
        pass  # earlier cases may have left jobs waiting too
    return made


ZIP = ("application/zip",)
NO_SUBMISSION = {
    "instance_ref": "uuid:nosuch",
    "instance_id": "uuid:nosuch",
    "version_id": "uuid:nosuch",
}
BAD_DRAFT_TOKEN = {"draft_token": "not-a-token"}
SPOTS_FORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
 xmlns:jr="http://openrosa.org/javarosa"><h:head><h:title>Spots</h:title><model>
<instance><data id="spots" version="1"><where/><meta><instanceID/></meta></data></instance>
<bind nodeset="/data/where" type="geopoint"/>
<bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
</model></h:head><h:body><input ref="/data/where"><label>Where</label></input></h:body></h:html>"""
SPOT = b'<data id="spots" version="1"><where>42.6 21.1 300 5</where><meta><instanceID>uuid:spot1</instanceID></meta></data>'


def conflicting_copy(ctx: Ctx) -> dict[str, Any]:
    """uuid:s1 again, with other answers: the same instanceID, different XML."""
    return {"content": submission_xml("uuid:s1", name="Other"), "headers": XML}


def conflicting_openrosa_copy(ctx: Ctx) -> dict[str, Any]:
    xml = submission_xml("uuid:s1", name="Other")
    return {"files": {"xml_submission_file": ("x.xml", xml, "text/xml")}, "headers": OPENROSA}


def edit_without_deprecated_id(ctx: Ctx) -> dict[str, Any]:
    return {"content": submission_xml("uuid:no-deprecated-id"), "headers": XML}


# fmt: off
CONTRACTS = [
    Contract("GET",    F + "/submissions",
             Ok(200, list[ExtendedSubmission], headers=EXTENDED),
             Fail(403.1, caller="coll")),
    Contract("POST",   F + "/submissions",
             Ok(200, Submission, body=new_submission),
             Fail(409.3, body=conflicting_copy)),
    Contract("GET",    F + "/submissions.csv",
             Ok(200, ("text/csv",)),
             Fail(403.1, caller="coll")),
    Contract("GET",    F + "/submissions.csv.zip",
             Ok(200, ZIP),
             Fail(403.1, caller="coll")),
    Contract("POST",   F + "/submissions.csv.zip",
             Ok(200, ZIP),
             Fail(404.1, values={"xml_form_id": "nosuch"})),
    Contract("POST",   F + "/export-jobs",
             Ok(201, ExportJob),
             Fail(400.8, params={"format": "pdf"})),
    Contract("GET",    F + "/export-jobs/{job_id:int}",
             Ok(200, ExportJob, fresh=fresh_export_job),
             Fail(404.1, values={"job_id": "999999"})),
    Contract("GET",    F + "/export-jobs/{job_id:int}/file",
             Ok(200, ZIP, fresh=finished_export_job),
             Fail(409.18, fresh=fresh_export_job)),
    Contract("GET",    F + "/cleaning-log",
             Ok(200, list[CleaningEntry]),
             Fail(403.1, caller="coll")),
    Contract("GET",    F + "/cleaning-log.csv",
             Ok(200, ("text/csv",)),
             Fail(403.1, caller="coll")),
    Contract("POST",   F + "/cleaning-log",
             Ok(200, CleaningEntry, body=cleaning_entry),
             Fail(403.1, caller="view", body=cleaning_entry)),
    Contract("POST",   F + "/cleaning-log.csv",
             Ok(200, list[CleaningEntry], body=cleaning_upload),
             Fail(400.8, body=lambda ctx: {"content": b"instanceId\n", "headers": {"Content-Type": "text/csv"}})),
    Contract("DELETE", F + "/cleaning-log/{entry_id:int}",
             Ok(200, Success, fresh=fresh_cleaning_entry),
             Fail(404.1, values={"entry_id": "999999"})),
    Contract("POST",   F + "/cleaning-checks",
             Ok(200, CheckReport),
             Fail(403.1, caller="view")),
    Contract("GET",    F + "/cleaning-findings",
             Ok(200, list[Finding]),
             Fail(400.8, params={"status": "maybe"})),
    Contract("POST",   F + "/cleaning-findings/run",
             Ok(200, CheckRun),
             Fail(403.1, caller="view")),
    Contract("POST",   F + "/cleaning-findings/{finding_id:int}/accept",
             Ok(200, AcceptedFinding, fresh=fresh_finding, body=json_body({"newValue": "30"})),
             Fail(404.1, values={"finding_id": "999999"}, body=json_body({"newValue": "30"}))),
    Contract("POST",   F + "/cleaning-findings/{finding_id:int}/dismiss",
             Ok(200, Finding, fresh=fresh_finding, body=json_body({"reason": "a real value"})),
             Fail(400.2, fresh=fresh_finding, body=json_body({"reason": " "}))),
    Contract("GET",    F + "/cleaning-check-settings",
             Ok(200, StoredCheckSettings),
             Fail(403.1, caller="view")),
    Contract("PUT",    F + "/cleaning-check-settings",
             Ok(200, StoredCheckSettings, body=json_body({"checks": ["outlier"]})),
             Fail(400.8, body=json_body({"outlierFields": ["/nosuch"]}))),
    Contract("DELETE", F + "/cleaning-check-settings",
             Ok(200, Success),
             Fail(403.1, caller="view")),
    Contract("GET",    F + "/submissions.xlsx",
             Ok(200, ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",)),
             Fail(403.1, caller="coll")),
    Contract("GET",    F + "/submissions.parquet.zip",
             Ok(200, ZIP),
             Fail(403.1, caller="coll")),
    Contract("GET",    F + "/submissions.geojson",
             Ok(200, ("application/geo+json", "application/json"), values={"xml_form_id": "spots"}),
             Fail(400.8)),
    Contract("GET",    P + "/forms/{form_ref:str}/{rest:path}",
             Ok(200, ODataRows, fresh=given(form_ref="simple.svc", rest="Submissions")),
             Fail(404.1, fresh=given(form_ref="nosuch.svc", rest="Submissions"))),
    Contract("GET",    F + "/submissions/submitters",
             Ok(200, list[Actor]),
             Fail(403.1, caller="coll")),
    Contract("GET",    F + "/submissions/keys",
             Ok(200, list[Key]),
             Fail(403.1, caller="coll")),
    Contract("GET",    F + "/submissions/{instance_ref:str}",
             Ok(200, ExtendedSubmission, headers=EXTENDED),
             Fail(404.1, values=NO_SUBMISSION)),
    Contract("PUT",    F + "/submissions/{instance_ref:str}",
             Ok(200, Submission, fresh=fresh_submission, body=edit_of_current),
             Fail(400.19, fresh=fresh_submission, body=edit_without_deprecated_id)),
    Contract("PATCH",  F + "/submissions/{instance_ref:str}",
             Ok(200, Submission, body=json_body({"reviewState": "hasIssues"})),
             Fail(400.8, body=json_body({"reviewState": "sleeping"}))),
    Contract("DELETE", F + "/submissions/{instance_ref:str}",
             Ok(200, Success, fresh=fresh_submission),
             Fail(404.1, values=NO_SUBMISSION)),
    Contract("POST",   S + "/restore",
             Ok(200, Success, fresh=fresh_deleted_submission),
             Fail(404.1, values=NO_SUBMISSION)),
    Contract("GET",    S + "/attachments",
             Ok(200, list[SubmissionAttachment]),
             Fail(404.1, values=NO_SUBMISSION)),
    Contract("GET",    S + "/attachments/{name:str}",
             Ok(200, ("image/jpeg",)),
             Fail(404.1, values={"name": "nosuch.jpg"})),
    Contract("POST",   S + "/attachments/{name:str}",
             Ok(200, Success, body=PHOTO),
             Fail(404.1, values={"name": "nosuch.jpg"}, body=PHOTO)),
    Contract("DELETE", S + "/attachments/{name:str}",
             Ok(200, Success, fresh=fresh_submission_with_photo),
             Fail(404.1, values={"name": "nosuch.jpg"})),
    Contract("GET",    S + "/versions",
             Ok(200, list[ExtendedSubmissionVersion], headers=EXTENDED),
             Fail(404.1, values=NO_SUBMISSION)),
    Contract("GET",    S + "/versions/{version_ref:str}",
             Ok(200, SubmissionVersion),
             Fail(404.1, values={"version_ref": "uuid:nosuch"})),
    Contract("GET",    S + "/versions/{version_id:str}/attachments",
             Ok(200, list[SubmissionAttachment]),
             Fail(404.1, values={"version_id": "uuid:nosuch"})),
    Contract("GET",    S + "/versions/{version_id:str}/attachments/{name:str}",
             Ok(200, ("image/jpeg",), fresh=fresh_submission_with_photo),
             Fail(404.1, values={"name": "nosuch.jpg"})),
    Contract("DELETE", S + "/versions/{version_id:str}/attachments/{name:str}",
             Ok(200, Success, fresh=fresh_submission_with_photo),
             Fail(404.1, values={"name": "nosuch.jpg"})),
    Contract("GET",    S + "/diffs",
             Ok(200, dict[str, list[DiffValue]]),
             Fail(404.1, values=NO_SUBMISSION)),
    Contract("GET",    S + "/comments",
             Ok(200, list[ExtendedComment], headers=EXTENDED),
             Fail(404.1, values=NO_SUBMISSION)),
    Contract("POST",   S + "/comments",
             Ok(200, Comment, body=json_body({"body": "Checked by phone."})),
             Fail(400.2, body=json_body({}))),
    Contract("GET",    S + "/audits",
             Ok(200, list[ExtendedAudit], headers=EXTENDED),
             Fail(404.1, values=NO_SUBMISSION)),
    # OpenRosa: Collect's submission routes (errors in XML, HEAD without a body)
    Contract("HEAD",   P + "/submission",
             Ok(204, None, body=OPENROSA_ONLY),
             Fail(401.2, caller="anon", headers=OPENROSA | {"Authorization": "Bearer not-a-session"}, xml=True)),
    Contract("POST",   P + "/submission",
             Ok(201, XML_TYPES, body=openrosa_submission),
             Fail(409.1, body=conflicting_openrosa_copy, xml=True)),
    Contract("HEAD",   KEY + "/submission",
             Ok(204, None, caller="anon", body=OPENROSA_ONLY),
             Fail(403.1, caller="anon", values={"token": "A" * 64}, headers=OPENROSA, xml=True)),
    Contract("POST",   KEY + "/submission",
             Ok(201, XML_TYPES, caller="anon", body=openrosa_submission),
             Fail(403.1, caller="anon", values={"token": "A" * 64}, body=openrosa_submission, xml=True)),
    Contract("HEAD",   TEST + "/draft/submission",
             Ok(204, None, caller="anon", fresh=fresh_draft_token, body=OPENROSA_ONLY),
             Fail(404.4, caller="anon", values=BAD_DRAFT_TOKEN, headers=OPENROSA, xml=True)),
    Contract("POST",   TEST + "/draft/submission",
             Ok(201, XML_TYPES, caller="anon", fresh=fresh_draft_token, body=openrosa_submission),
             Fail(404.4, caller="anon", values=BAD_DRAFT_TOKEN, body=openrosa_submission, xml=True)),
]
# fmt: on


@pytest.fixture(scope="module")
async def ctx(module_world: World) -> Ctx:
    made = await build(module_world)
    forms, admin = made.forms, made.admin
    await ok(made.client.post(f"{forms}?publish=true", content=SPOTS_FORM, headers=admin | XML))
    await ok(made.client.post(f"{forms}/spots/submissions", content=SPOT, headers=admin | XML))
    return made


@pytest.mark.parametrize("contract", CONTRACTS, ids=ids(CONTRACTS))
async def test_success_matches_central(ctx: Ctx, contract: Contract) -> None:
    await check_success(ctx, contract)


@pytest.mark.parametrize("contract", CONTRACTS, ids=ids(CONTRACTS))
async def test_failure_matches_central(ctx: Ctx, contract: Contract) -> None:
    await check_failure(ctx, contract)
