"""Central's system roles, with Central's numeric ids (pyodk assigns app users with id 2).

Central's ids come from the order its migrations created the roles: 3 and 4 are
internal token roles (password reset, backup verification) never assigned through
the API, so they are absent here and the numbering keeps Central's gaps.

The migration that creates the ``roles`` table seeds exactly these rows; a test keeps
the two in step. Authorisation reads the verbs from here.
"""

from __future__ import annotations

from typing import Final

import msgspec


class RoleSpec(msgspec.Struct, frozen=True):
    id: int
    system: str
    name: str
    verbs: frozenset[str]


# Entity lists (migration 0007 added these verbs to the stored roles).
_ENTITY_READ = frozenset({"dataset.list", "dataset.read", "entity.list", "entity.read"})
ENTITY_MANAGE: Final = frozenset(
    {
        "dataset.create",
        "dataset.update",
        "entity.create",
        "entity.update",
        "entity.delete",
        "entity.restore",
    }
)
_PROJECT_READ = (
    frozenset({"project.read", "form.list", "form.read", "submission.list", "submission.read"})
    | _ENTITY_READ
)
_PROJECT_MANAGE = (
    _PROJECT_READ
    | frozenset(
        {
            "project.update",
            "project.delete",
            "assignment.list",
            "assignment.create",
            "assignment.delete",
            "field_key.list",
            "field_key.create",
            "field_key.delete",
            "public_link.list",
            "public_link.create",
            "public_link.delete",
            "form.create",
            "form.update",
            "form.delete",
            "form.restore",
            "submission.create",
            "submission.update",
            "submission.delete",
            "submission.restore",
        }
    )
    | ENTITY_MANAGE
)
_SITE = frozenset(
    {
        "project.list",
        "project.create",
        "user.list",
        "user.read",
        "user.create",
        "user.update",
        "user.delete",
        "audit.read",
        "config.read",
    }
)

ROLES: Final = (
    RoleSpec(1, "admin", "Administrator", _PROJECT_MANAGE | _SITE),
    RoleSpec(2, "app-user", "App User", frozenset({"form.read", "submission.create"})),
    RoleSpec(5, "manager", "Project Manager", _PROJECT_MANAGE),
    RoleSpec(6, "viewer", "Project Viewer", _PROJECT_READ),
    RoleSpec(7, "form-viewer", "Form Viewer", frozenset({"form.read"})),
    RoleSpec(
        8,
        "formfill",
        "Data Collector",
        frozenset({"project.read", "form.list", "form.read", "submission.create"}),
    ),
    RoleSpec(9, "pub-link", "Public Link", frozenset({"form.read", "submission.create"})),
)
ROLES_BY_ID: Final = {role.id: role for role in ROLES}
ROLES_BY_SYSTEM: Final = {role.system: role for role in ROLES}


def find_role(key: str | int) -> RoleSpec | None:
    """A role named by its numeric id or its system name, as Central's routes accept."""
    if isinstance(key, int) or (key.isascii() and key.isdigit()):
        return ROLES_BY_ID.get(int(key))
    return ROLES_BY_SYSTEM.get(key)
