"""The one error type of the OData package, carrying Central's numeric problem code.

The server turns it into Central's JSON problem (``{"code": 501.4, ...}``); the
codes are Central's so clients that branch on them keep working.
"""

from __future__ import annotations

__all__ = ["ODataError"]


class ODataError(Exception):
    def __init__(self, code: float, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def unparseable_filter(cls, reason: str) -> ODataError:
        return cls(400.18, f"The OData filter expression could not be parsed: {reason}")

    @classmethod
    def property_not_found(cls, name: str) -> ODataError:
        return cls(400.23, f"Could not find a property named '{name}'.")

    @classmethod
    def select_in_repeat(cls, name: str) -> ODataError:
        return cls(
            400.24,
            f"The $select property '{name}' lies inside a repeat; ask that repeat's own "
            "table for it instead.",
        )

    @classmethod
    def invalid_skiptoken(cls) -> ODataError:
        return cls(400.35, "The $skiptoken is not valid; start again from the first page.")

    @classmethod
    def not_implemented(cls, feature: str) -> ODataError:
        return cls(501.1, f"The requested feature {feature} is not supported by this server.")

    @classmethod
    def unsupported_expression(cls, what: str, at: int, text: str) -> ODataError:
        return cls(
            501.4,
            f"The OData filter expression uses features not supported by this server: "
            f"{what} at {at} ({text!r}).",
        )

    @classmethod
    def unsupported_field(cls, text: str) -> ODataError:
        return cls(
            501.5,
            f"The OData expression references a field not supported by this server: {text}. "
            "Supported are __id and __system/submissionDate, updatedAt, submitterId, "
            "reviewState and deletedAt.",
        )

    @classmethod
    def unsupported_expand(cls, text: str) -> ODataError:
        return cls(
            501.6,
            f'The OData expand expression "{text}" is not supported; only "$expand=*" is.',
        )

    @classmethod
    def select_with_expand(cls) -> ODataError:
        return cls(501.11, "$select cannot be combined with $expand.")
