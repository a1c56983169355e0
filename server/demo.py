"""The demo installation `make run` serves: an administrator, a project with the three
programme forms, and an app user whose QR code connects ODK Collect."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from server.db.models import Actor, FieldKey, Project
from server.qr import collect_settings, qr_png, qr_terminal, settings_payload
from server.roles import ROLES_BY_SYSTEM
from server.runtime import Runtime
from server.services import accounts, forms, projects

ADMIN_EMAIL = "admin@homeward.local"
PROJECT_NAME = "Return and Reintegration (demo)"
APP_USER_NAME = "Demo field team"
PROGRAMME_FORMS = Path(__file__).resolve().parent.parent / "forms" / "programme"
FORM_FILES = ("intake.xlsx", "needs_assessment.xlsx", "follow_up.xlsx")


@dataclass(frozen=True, slots=True)
class Demo:
    admin_email: str
    admin_password: str
    project_id: int
    collect_url: str
    qr_text: str
    qr_png_path: Path


def _admin_password(data_dir: Path) -> str:
    path = data_dir / "admin-password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(12))
        path.chmod(0o600)
    return path.read_text().strip()


async def seed_demo(rt: Runtime, base_url: str) -> Demo:
    """Create what is missing; running it again changes nothing and prints the same."""
    password = _admin_password(rt.settings.data_dir)
    async with rt.transaction() as db:
        found = await accounts.find_user(db, ADMIN_EMAIL)
        if found is None:
            actor, _ = await accounts.create_user(
                db,
                email=ADMIN_EMAIL,
                password=password,
                display_name="Administrator",
                keep_digest=rt.settings.digest_auth,
            )
            await accounts.promote_to_admin(db, actor.id, by=None)
        else:
            actor = found[0]
        admin = await accounts.load_principal(db, actor)
        project = await db.scalar(select(Project).where(Project.name == PROJECT_NAME))
        if project is None:
            project = await projects.create_project(
                db,
                name=PROJECT_NAME,
                description="Intake, needs assessment and follow-up.",
                by=admin,
            )
            for file_name in FORM_FILES:
                upload = forms.FormUpload(
                    data=(PROGRAMME_FORMS / file_name).read_bytes(),
                    content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    form_id_fallback=file_name.removesuffix(".xlsx"),
                )
                await forms.create_form(
                    rt,
                    db,
                    project_id=project.id,
                    upload=upload,
                    publish=True,
                    ignore_warnings=False,
                    by=admin,
                )
        row = (
            await db.execute(
                select(Actor, FieldKey)
                .join(FieldKey, FieldKey.actor_id == Actor.id)
                .where(
                    FieldKey.project_id == project.id,
                    Actor.display_name == APP_USER_NAME,
                    Actor.deleted_at.is_(None),
                    FieldKey.token_nonce.is_not(None),
                )
            )
        ).first()
        if row is None:
            app_actor, key, token = await accounts.create_app_user(
                db,
                project_id=project.id,
                display_name=APP_USER_NAME,
                secret_key=rt.settings.secret_key,
                by=admin,
            )
            for form in await forms.list_forms(db, project.id):
                await accounts.assign(
                    db,
                    actor_id=app_actor.id,
                    role=ROLES_BY_SYSTEM["app-user"],
                    form_id=form.id,
                    by=admin.actor_id,
                )
        else:
            key = row[1]
            token = accounts.app_user_token(key, rt.settings.secret_key) or ""
        project_id = project.id
        project_name = project.name
    collect_url = f"{base_url.rstrip('/')}/v1/key/{token}/projects/{project_id}"
    payload = settings_payload(collect_settings(collect_url, project_name))
    png_path = rt.settings.data_dir / "collect-qr.png"
    # The QR code holds the app user's token: readable by this user only.
    png_path.touch(mode=0o600)
    png_path.chmod(0o600)
    png_path.write_bytes(qr_png(payload))
    return Demo(ADMIN_EMAIL, password, project_id, collect_url, qr_terminal(payload), png_path)
