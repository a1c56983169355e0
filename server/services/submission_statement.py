"""A new submission written in one PostgreSQL statement: the common path of ingest.

On PostgreSQL every statement is a network round trip, and so are BEGIN and
COMMIT. A new submission (a new instanceID, not an edit) writes five kinds of
rows: the blobs it brings, the submission, its first version, its attachment
rows and the audit entry. One data-modifying CTE writes them all, and run
without BEGIN and COMMIT (`Runtime.write(..., one_statement=True)`, atomic
because it is one statement) the write phase is a single round trip.

It means what the separate statements of `server.services.submissions` mean
(SQLite still runs those): `ON CONFLICT DO NOTHING` on the submission decides the
race between two copies of one submission, and when it inserts nothing, no other
row is written either. Foreign keys are checked at the end of the statement, so
an attachment row may point at a blob row inserted beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text

from storage import BlobInfo

# Every parameter is cast: PostgreSQL cannot infer the type of a parameter in
# INSERT ... SELECT, and one used in two places must have one type.
_CREATE = text(
    """
WITH submission AS (
    INSERT INTO submissions
        (form_id, instance_id, draft, submitter_id, device_id, user_agent, created_at)
    VALUES (
        CAST(:form_id AS bigint), CAST(:instance_id AS text), CAST(:draft AS boolean),
        CAST(:submitter_id AS bigint), CAST(:device_id AS text), CAST(:user_agent AS text),
        CAST(:created_at AS timestamptz)
    )
    ON CONFLICT (form_id, draft, instance_id) DO NOTHING
    RETURNING id
), version AS (
    INSERT INTO submission_defs
        (submission_id, form_def_id, instance_id, deprecated_id, instance_name, xml,
         xml_sha256, record, odata_shape, odata_row, encrypted, current, submitter_id,
         device_id, user_agent, created_at)
    SELECT
        id, CAST(:form_def_id AS bigint), CAST(:instance_id AS text),
        CAST(:deprecated_id AS text), CAST(:instance_name AS text), CAST(:xml AS bytea),
        CAST(:xml_sha256 AS text), CAST(:record AS bytea), CAST(:odata_shape AS text),
        CAST(:odata_row AS bytea), CAST(:encrypted AS boolean),
        CAST(:current AS boolean), CAST(:submitter_id AS bigint), CAST(:device_id AS text),
        CAST(:user_agent AS text), CAST(:created_at AS timestamptz)
    FROM submission
    RETURNING id
), blob AS (
    INSERT INTO blobs (sha256, md5, size, content_type, created_at)
    SELECT given.sha256, given.md5, given.size, given.content_type,
        CAST(:created_at AS timestamptz)
    FROM unnest(
        CAST(:blob_sha256 AS text[]), CAST(:blob_md5 AS text[]),
        CAST(:blob_size AS bigint[]), CAST(:blob_content_type AS text[])
    ) AS given (sha256, md5, size, content_type)
    WHERE EXISTS (SELECT FROM submission)
    ON CONFLICT (sha256) DO NOTHING
), attachment AS (
    INSERT INTO submission_attachments (submission_def_id, name, blob_sha256, content_type)
    SELECT version.id, given.name, given.blob_sha256, given.content_type
    FROM version, unnest(
        CAST(:attachment_name AS text[]), CAST(:attachment_sha256 AS text[]),
        CAST(:attachment_content_type AS text[])
    ) AS given (name, blob_sha256, content_type)
), audit AS (
    INSERT INTO audits (actor_id, action, target_kind, target_id, details, logged_at)
    SELECT
        CAST(:submitter_id AS bigint), 'submission.create', 'submission', id,
        CAST(:audit_details AS text), CAST(:created_at AS timestamptz)
    FROM submission
)
SELECT id FROM submission
"""
)


def create_submission_in_one_statement(
    connection: Connection,
    *,
    submission: dict[str, Any],
    version: dict[str, Any],
    blobs: Sequence[tuple[BlobInfo, str]],
    attachments: Sequence[tuple[str, str | None, str | None]],
    audit_details: str | None,
) -> int | None:
    """Insert a new submission and everything that comes with it; PostgreSQL only.

    `submission` and `version` are the values of the submission's row and of its
    first version's (without `submission_id`), as the separate inserts take them;
    `blobs` the stored files with their content types, `attachments` one
    (name, sha256 or None, declared type or None) per expected file. Returns the
    new submission's id, or None when another copy of it was inserted first (and
    nothing was written).
    """
    shared = submission.keys() & version.keys()
    assert all(submission[key] == version[key] for key in shared), "rows disagree"
    unique = {info.sha256: (info, content_type) for info, content_type in blobs}
    submission_id: int | None = connection.scalar(
        _CREATE,
        {
            **submission,
            **version,
            "blob_sha256": [info.sha256 for info, _ in unique.values()],
            "blob_md5": [info.md5 for info, _ in unique.values()],
            "blob_size": [info.size for info, _ in unique.values()],
            "blob_content_type": [content_type for _, content_type in unique.values()],
            "attachment_name": [name for name, _, _ in attachments],
            "attachment_sha256": [sha for _, sha, _ in attachments],
            "attachment_content_type": [kind for _, _, kind in attachments],
            "audit_details": audit_details,
        },
    )
    return submission_id
