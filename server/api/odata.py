"""Central's OData feed of a form's submissions, for Power BI, Excel, pyodk and ruODK.

Paths (the draft's under ``.../forms/{xmlFormId}/draft.svc`` in the same way):

- ``.../forms/{xmlFormId}.svc/$metadata``: the EDMX document;
- ``.../forms/{xmlFormId}.svc/Submissions`` and every repeat table
  (``Submissions.household.member``): rows;
- ``.../Submissions('<instanceId>')`` and the navigation links below it.

Query options: ``$top``, ``$skip``, ``$count``, ``$filter``, ``$orderby``,
``$select``, ``$expand=*``, ``$wkt`` and ``$skiptoken`` (from
``@odata.nextLink``). The service document itself (``{xmlFormId}.svc``) shares
its path shape with the form resource in server.api.forms, which calls
:func:`service_document` for it.

Sign-in, rights, the form and every option are checked before the first byte;
without ``$top`` the rows stream page by page.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import msgspec
from litestar import Response, Router, get
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from exports.odata import (
    ROOT_TABLE,
    ODataError,
    RowOptions,
    RowWriter,
    mentions,
    parse_filter,
    parse_orderby,
    parse_select,
    render_metadata,
)
from exports.odata import service_document as render_service_document
from exports.odata.filter import FILTER_FIELDS, Expr
from server import problems
from server.api.common import check
from server.auth import Principal
from server.db.models import Submission
from server.encoded_paths import path_segment
from server.requests import AnyRequest, parse_flag, require_principal, runtime_of
from server.runtime import Runtime
from server.services import odata as feed_service
from server.services.field_filter import answer_fields
from server.services.filter_copy import decide_from_copy
from server.services.odata import Answers, Feed, FeedQuery, FeedRow
from server.services.personal import PersonalView, audit_personal_read, personal_view

JSON = "application/json; odata.metadata=minimal"
XML = "application/xml"
HEADERS = {"OData-Version": "4.0"}

Top = Annotated[str | None, QueryParameter(name="$top")]
Skip = Annotated[str | None, QueryParameter(name="$skip")]
Count = Annotated[str | None, QueryParameter(name="$count")]
Filter = Annotated[str | None, QueryParameter(name="$filter")]
OrderBy = Annotated[str | None, QueryParameter(name="$orderby")]
Select = Annotated[str | None, QueryParameter(name="$select")]
Expand = Annotated[str | None, QueryParameter(name="$expand")]
Wkt = Annotated[str | None, QueryParameter(name="$wkt")]
SkipToken = Annotated[str | None, QueryParameter(name="$skiptoken")]

_SEGMENT = re.compile(r"^([^(]+)(?:\('(.*)'\))?$")
_encode = msgspec.json.Encoder().encode
STREAM_CHUNK = 64 * 1024


async def _feed(
    request: AnyRequest, project_id: int, xml_form_id: str, *, draft: bool
) -> tuple[Feed, Principal, PersonalView]:
    rt = runtime_of(request)
    async with rt.read() as db:
        principal = await require_principal(request, db)
        feed = await feed_service.load_feed(db, project_id, xml_form_id, draft=draft)
        check(principal, "submission.read", project_id=project_id, form_id=feed.form.id)
        view = await personal_view(db, principal, feed.form)
    return feed, principal, view


def _service_root(request: AnyRequest, feed: Feed) -> str:
    """The service's absolute URL, the form id percent-encoded (it may hold ``/``)."""
    url = request.url
    form_path = f"{url.path.split('/forms/')[0]}/forms/{path_segment(feed.form.xml_form_id)}"
    return f"{url.scheme}://{url.netloc}{form_path}{'/draft.svc' if feed.draft else '.svc'}"


async def service_document(
    request: AnyRequest, project_id: int, xml_form_id: str, *, draft: bool = False
) -> Response[bytes]:
    feed, _, _ = await _feed(request, project_id, xml_form_id, draft=draft)
    body = _encode(render_service_document(feed.model, _service_root(request, feed)))
    return Response(body, media_type=JSON, headers=HEADERS)


def _count_option(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise problems.unexpected_value(name, value, "use a whole number, 0 or more.")
    return int(value)


@get(
    "/projects/{project_id:int}/forms/{form_ref:str}/{rest:path}",
    operation_id="getODataResource",
)
async def odata_resource(
    request: AnyRequest,
    project_id: FromPath[int],
    form_ref: FromPath[str],
    rest: FromPath[str],
    top: Top = None,
    skip: Skip = None,
    count: Count = None,
    filter_text: Filter = None,
    orderby: OrderBy = None,
    select: Select = None,
    expand: Expand = None,
    wkt: Wkt = None,
    skiptoken: SkipToken = None,
) -> Response[bytes] | Stream:
    """`{xmlFormId}.svc/...` or `{xmlFormId}/draft.svc[/...]`."""
    if form_ref.endswith(".svc"):
        xml_form_id, draft, sub = form_ref.removesuffix(".svc"), False, rest
    elif rest == "/draft.svc" or rest.startswith("/draft.svc/"):
        xml_form_id, draft, sub = form_ref, True, rest.removeprefix("/draft.svc")
    else:
        raise problems.not_found()
    sub = sub.strip("/")
    if sub == "":
        return await service_document(request, project_id, xml_form_id, draft=draft)
    feed, principal, view = await _feed(request, project_id, xml_form_id, draft=draft)
    if sub == "$metadata":
        return Response(render_metadata(feed.model), media_type=XML, headers=HEADERS)
    try:
        answer = await _data(
            request,
            feed,
            view,
            sub,
            top=top,
            skip=skip,
            count=count,
            filter_text=filter_text,
            orderby=orderby,
            select=select,
            expand=expand,
            wkt=wkt,
            skiptoken=skiptoken,
        )
    except ODataError as error:  # the options are all read before the first byte
        raise feed_service.problem_of(error) from error
    if view.reads_clear:
        await audit_personal_read(runtime_of(request), principal, feed.form, "odata", path=sub)
    return answer


def _refuse_personal_filter(view: PersonalView, expr: Expr | None, answers: Answers) -> None:
    """A caller who sees personal answers masked may not narrow rows by them: each
    filter would answer a yes/no question about the value (an oracle)."""
    if not view.masked:
        return
    for name, node in answers.items():
        if mentions(expr, name) and view.fields.covers(node.path):
            raise problems.personal_filter_forbidden(name)


async def _decided_from_copy(
    request: AnyRequest, feed: Feed, expr: Expr | None, answers: Answers
) -> feed_service.Decided:
    if expr is None or feed.draft or not answers:
        return {}
    # Validated first: a bad literal is refused as before, whichever path reads it.
    feed_service.filter_clause(expr, answers)
    return await decide_from_copy(
        runtime_of(request),
        feed.form,
        expr,
        answers,
        lambda part: feed_service.filter_clause(part, answers),
        feed_service.coerce_literal,
    )


def _split_outside_quotes(sub: str) -> list[str]:
    """``sub`` split at each ``/`` that is not inside a quoted key (``('a/b')``)."""
    parts = [""]
    quoted = False
    for char in sub:
        if char == "'":
            quoted = not quoted  # a doubled '' (an escaped quote) toggles twice
        if char == "/" and not quoted:
            parts.append("")
        else:
            parts[-1] += char
    return parts


def _parse_path(sub: str) -> tuple[str, str | None, list[tuple[str, str | None]]]:
    """The table a data path names, the one submission it keys, and its segments."""
    segments: list[tuple[str, str | None]] = []
    for part in _split_outside_quotes(sub):
        # The path arrives decoded (server.encoded_paths): a key may hold ``/`` or ``%``.
        match = _SEGMENT.match(part)
        if match is None:
            raise problems.not_found()
        key = None if match[2] is None else match[2].replace("''", "'")
        segments.append((match[1], key))
    if segments[0][0] != ROOT_TABLE and len(segments) > 1:
        raise problems.not_found()
    if len(segments) == 1:
        if segments[0][1] is not None and segments[0][0] != ROOT_TABLE:
            raise problems.not_found()  # only submissions are addressed by key
        return segments[0][0], segments[0][1], segments
    if segments[0][1] is None:
        raise problems.not_found()  # Submissions/x without a key
    return ".".join(name for name, _ in segments), segments[0][1], segments


async def _data(
    request: AnyRequest,
    feed: Feed,
    view: PersonalView,
    sub: str,
    *,
    top: str | None,
    skip: str | None,
    count: str | None,
    filter_text: str | None,
    orderby: str | None,
    select: str | None,
    expand: str | None,
    wkt: str | None,
    skiptoken: str | None,
) -> Response[bytes] | Stream:
    table_name, instance_id, segments = _parse_path(sub)
    table = feed_service.find_table(feed.model, table_name)
    root_only = table.parent is not None
    if expand not in (None, "", "*"):
        raise ODataError.unsupported_expand(expand)
    if select not in (None, "") and expand == "*":
        raise ODataError.select_with_expand()
    options = RowOptions(
        expand=expand == "*",
        wkt=parse_flag(wkt),
        # Below Submissions('id') rows are filtered by parent afterwards: all fields.
        select=parse_select(table, select) if len(segments) == 1 else None,
    )
    # The form's own questions may be named too (Central reads only __system).
    answers = answer_fields(feed.model)
    expr = parse_filter(
        filter_text, root_only=root_only, fields=FILTER_FIELDS | answers.keys(), conditions=True
    )
    _refuse_personal_filter(view, expr, answers)
    order = parse_orderby(orderby, root_only=root_only) or feed_service.DEFAULT_ORDER
    limit = _count_option("$top", top)
    offset = _count_option("$skip", skip) or 0
    cursor = None if not skiptoken else feed_service.decode_skiptoken(skiptoken)
    # Answers are read from the analysis copy where it holds them (Polars over
    # columns, not a JSON record parsed per submission in SQL).
    decided = await _decided_from_copy(request, feed, expr, answers)
    where = feed_service.base_where(
        feed, expr, include_deleted=mentions(expr, "__system/deletedAt"), decided=decided
    )
    writer = RowWriter(feed.model, table, options)
    shown = view.record if view.masked else None
    query = FeedQuery(feed, table, writer, where, order, 0 if cursor else offset, cursor, shown)
    context = f"{_service_root(request, feed)}/$metadata#{table_name}"
    rt = runtime_of(request)

    if instance_id is not None:
        return await _one_submission(request, query, instance_id, segments, context)

    head: dict[str, Any] = {"@odata.context": context}
    counting = parse_flag(count)
    if limit is None:
        if counting:  # the count comes first in a stream
            head["@odata.count"] = await _count(rt, query)
        return Stream(
            _stream(rt.read, query, head), media_type=JSON, headers=HEADERS | {"Content-Type": JSON}
        )
    # With $top the count is only written at the end: it runs on its own
    # connection while the page is read (SQLite's readers and PostgreSQL's
    # backends work in parallel; the event loop only waits).
    counted = asyncio.ensure_future(_count(rt, query)) if counting else None
    try:
        body = await _page_body(request, query, limit, head, sub)
        if counted is not None:
            body = {**head, "@odata.count": await counted, **body}
    finally:
        if counted is not None and not counted.done():
            counted.cancel()
    return Response(_encode(body), media_type=JSON, headers=HEADERS)


async def _count(rt: Runtime, query: FeedQuery) -> int:
    async with rt.read() as db:
        return await feed_service.count_rows(db, query, rt.read)


async def _page_body(
    request: AnyRequest, query: FeedQuery, limit: int, head: dict[str, Any], resource: str
) -> dict[str, Any]:
    """The page's rows and, when more follow, its next link (head keys first)."""
    rt = runtime_of(request)
    table = query.table
    rows: list[dict[str, Any] | msgspec.Raw] = []
    last: FeedRow | None = None
    more = False
    if limit > 0:
        # The root table's $skip is an OFFSET in SQL; a repeat table's is counted here.
        wanted = limit + 1 + (query.skip if table.parent is not None else 0)
        # One more than a batch: a page of $top=1000 and whether a next page
        # exists come from one query, not from a second read of 1,000 rows.
        batch = min(feed_service.BATCH_SIZE + 1, wanted)
        entities = feed_service.iterate_rows(rt.read, query, batch=batch)
        async with aclosing(entities):
            async for feed_row in entities:
                if len(rows) == limit:
                    more = True
                    break
                rows.append(feed_row.row)
                last = feed_row
    body = head | {"value": rows}
    if more and last is not None:
        token = feed_service.encode_skiptoken(last.cursor, last.instance_id)
        body["@odata.nextLink"] = _next_link(request, query.feed, resource, token)
    return body


def _next_link(request: AnyRequest, feed: Feed, resource: str, token: str) -> str:
    kept = [
        (name, value)
        for name, value in request.query_params.multi_items()
        if name not in ("$skip", "$skiptoken")
    ]
    kept.append(("$skiptoken", token))
    # Built from the decoded parts, each encoded again: the request's own path
    # may hold an id's ``✅`` or ``'`` as they were decoded.
    encoded = quote(resource, safe="/!~*'():$,=@")
    return f"{_service_root(request, feed)}/{encoded}?{urlencode(kept, safe='$/')}"


async def _stream(
    open_session: feed_service.Sessions, query: FeedQuery, head: dict[str, Any]
) -> AsyncGenerator[bytes, None]:
    """All rows, one batch of submissions at a time (no $top: Central sends everything)."""
    opening = _encode(head)[:-1] + b',"value":['
    buffer = bytearray(opening)
    first = True
    async for feed_row in feed_service.iterate_rows(open_session, query):
        if not first:
            buffer += b","
        first = False
        buffer += _encode(feed_row.row)
        if len(buffer) >= STREAM_CHUNK:
            yield bytes(buffer)
            buffer.clear()
    buffer += b"]}"
    yield bytes(buffer)


async def _one_submission(
    request: AnyRequest,
    query: FeedQuery,
    instance_id: str,
    segments: list[tuple[str, str | None]],
    context: str,
) -> Response[bytes]:
    """`Submissions('id')` and the navigation links below it (Central's singleRowToOData)."""
    rt = runtime_of(request)
    query.where = (*query.where, Submission.instance_id == instance_id)
    query.skip = 0
    query.cursor = None
    rows: list[dict[str, Any] | msgspec.Raw] = []
    found = False
    async for feed_row in feed_service.iterate_rows(rt.read, query, batch=2):
        found = True
        rows.append(feed_row.row)
    if not found and query.table.parent is None:
        raise problems.not_found()
    if query.table.parent is not None:
        keyed = [index for index, (_, key) in enumerate(segments) if key is not None]
        last_key = keyed[-1]
        if last_key > 0:
            names = [name for name, _ in segments[: last_key + 1]]
            parent_property = "__" + "-".join(names) + "-id"
            wanted = segments[last_key][1]
            rows = [
                row for row in rows if isinstance(row, dict) and row.get(parent_property) == wanted
            ]
    return Response(_encode({"@odata.context": context, "value": rows}), media_type=JSON)


router = Router("/v1", route_handlers=[odata_resource], tags=["odata"])
