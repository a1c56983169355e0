"""The one catalogue of domain problems, each with Central's numeric code.

Services raise :class:`Problem`; the JSON API renders it as Central's
``{"code": 404.1, "message": ...}`` and the OpenRosa routes as an
``<OpenRosaResponse>`` envelope that Collect shows to the field worker.
"""

from __future__ import annotations

from typing import Any


class Problem(Exception):  # noqa: N818 - Central's own name for these
    def __init__(self, code: float, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    @property
    def status(self) -> int:
        return int(self.code)


def unparseable(what: str, reason: str) -> Problem:
    return Problem(400.1, f"The request body could not be read as {what}: {reason}")


def missing_parameter(name: str) -> Problem:
    return Problem(400.2, f"The required parameter {name} is missing.", {"field": name})


def missing_multipart_field(name: str) -> Problem:
    return Problem(400.7, f"The multipart field {name} is missing.", {"field": name})


def unexpected_value(field: str, value: object, reason: str) -> Problem:
    return Problem(400.8, f"The value {value!r} of {field} is not accepted: {reason}")


def xlsform_invalid(error: str) -> Problem:
    return Problem(
        400.15,
        f"The XLSForm could not be converted: {error}",
        {"error": error},
    )


def expected_deprecation() -> Problem:
    return Problem(
        400.19,
        "An edit through PUT needs a deprecatedID in the submission's meta block, naming "
        "the instanceID of the current version.",
    )


def form_warnings(warnings: list[str]) -> Problem:
    return Problem(
        400.16,
        "The form converted with warnings. Read them and, if they are acceptable, "
        "upload again with ?ignoreWarnings=true.",
        {"warnings": {"xlsFormWarnings": warnings}},
    )


def authentication_failed() -> Problem:
    return Problem(401.2, "Those credentials are not valid.")


def https_only() -> Problem:
    return Problem(401.3, "This kind of sign-in is only accepted over HTTPS.")


def authentication_required() -> Problem:
    return Problem(401.4, "Please sign in to use this resource.")


def csrf_failed() -> Problem:
    return Problem(
        403.2, "This request came without the web app's CSRF token; reload the page and retry."
    )


def insufficient_rights() -> Problem:
    return Problem(403.1, "You are not allowed to do that.")


def export_not_possible(reason: str) -> Problem:
    """An export that cannot be made as asked (unknown language, no geo question ...)."""
    return Problem(400.8, f"{reason}.")


def too_many_exports(running: int, retry_after: int) -> Problem:
    """Every export slot is taken; `retry_after` seconds go into the Retry-After header."""
    return Problem(
        429.1,
        f"{running} exports are already being written, the most this server runs at once. "
        f"Try again in {retry_after} seconds.",
        {"retryAfter": retry_after},
    )


def export_not_ready(state: str) -> Problem:
    """An export job's file was asked for before it was done, or after it expired."""
    return Problem(
        409.18,
        f"The export is {state}; its file can be downloaded while the export is done and kept.",
        {"state": state},
    )


def personal_data_forbidden() -> Problem:
    return Problem(
        403.1,
        "Only project managers and administrators may export personal fields as they "
        "are; ask for personal=pseudonymise or personal=drop.",
    )


def personal_filter_forbidden(field: str) -> Problem:
    return Problem(
        403.1,
        f"The field {field} is marked personal; only project managers and administrators "
        "may filter submissions by it.",
        {"field": field},
    )


def personal_attachment_forbidden() -> Problem:
    return Problem(
        403.1,
        "This file answers a question marked personal; only project managers and "
        "administrators may download it.",
    )


def not_found() -> Problem:
    return Problem(404.1, "Nothing was found at this address.")


def draft_gone() -> Problem:
    return Problem(
        404.4,
        "This draft test link no longer works: the draft was published or replaced. "
        "Scan the new draft QR code, or use an app user for the published form.",
    )


def deprecated_id_not_found(deprecated_id: str) -> Problem:
    return Problem(
        404.5,
        f"The submission being edited ({deprecated_id}) is not on the server.",
        {"deprecatedId": deprecated_id},
    )


def form_version_not_found(version: str) -> Problem:
    return Problem(
        404.6,
        f"This submission was made with form version '{version}', which the server "
        "does not have. Get the current form on the phone and fill it in again.",
        {"formVersion": version},
    )


def xml_conflict() -> Problem:
    return Problem(
        409.1,
        "A different submission with the same instanceID is already on the server. "
        "Resending to add photos must repeat the identical submission XML.",
    )


def not_accepting_submissions() -> Problem:
    return Problem(
        409.2,
        "This form no longer accepts submissions. Ask your supervisor which form to use.",
    )


def already_exists(fields: str, values: str) -> Problem:
    return Problem(409.3, f"A resource with {fields} {values} already exists.")


def version_conflict(xml_form_id: str, version: str) -> Problem:
    return Problem(
        409.6,
        f"Form '{xml_form_id}' already has a published version '{version}'. "
        "Publish with ?version=... to give the new one another version string.",
    )


def no_published_version() -> Problem:
    return Problem(409.7, "The form has never been published, so its draft cannot be deleted.")


def instance_id_conflict() -> Problem:
    return Problem(409.8, "The edited submission's instanceID is already taken.")


def deprecating_old_version(deprecated_id: str) -> Problem:
    return Problem(
        409.9,
        f"The version being edited ({deprecated_id}) has been edited since. "
        "Fetch the newest version and edit that.",
    )


def too_large(limit: int) -> Problem:
    return Problem(413.1, f"The upload is larger than this server accepts ({limit} bytes).")


def too_many_sign_in_attempts(seconds: int) -> Problem:
    """429 with the wait in ``details`` (the response sends it as Retry-After too).

    Central's backend has no code for this (its proxy rate-limits sign-in); 429.1
    follows its numbering: the HTTP status, then the problem's number.
    """
    return Problem(
        429.1,
        f"Too many failed sign-in attempts. Try again in {seconds} seconds.",
        {"retryAfter": seconds},
    )


def too_many_headers(limit: int) -> Problem:
    return Problem(431.1, f"The request has more than {limit} headers.")


def unknown_error() -> Problem:
    return Problem(500.1, "Something went wrong on the server. Please try again later.")


def cleaning_not_possible(reason: str) -> Problem:
    """A cleaning log entry that cannot be made (no such field, a bad CSV line ...)."""
    return Problem(400.8, f"{reason}.")


def cleaning_conflict(instance_id: str, field: str, stored: str | None) -> Problem:
    """The entry's oldValue is not what the submission holds now."""
    return Problem(
        409.15,
        f"The answer at {field} of {instance_id} is now {stored!r}, not the oldValue given; "
        "read it again before cleaning it.",
        {"instanceId": instance_id, "field": field, "stored": stored},
    )


def finding_decided(status: str) -> Problem:
    """A check's finding that was accepted or dismissed already."""
    return Problem(
        409.16,
        f"The finding is {status} already; only open findings can be accepted or dismissed.",
        {"status": status},
    )
