"""pyodk's own live test suite (``tests/test_client.py`` at v1.3.0), unchanged, against Homeward.

The tests pyodk's team runs against a real Central, run here against a live
``homeward serve``, in a virtualenv of their own: pyodk from its PyPI sdist
(pinned by sha256) with the suite's test dependencies, built by uv (cached,
so a run after the first takes seconds).

Where the suite comes from: pyodk's sdist leaves its tests out (``[tool.flit.
sdist] exclude = ["docs", "tests"]``), and Homeward commits none of pyodk's
code, so the files are read at test time from a git snapshot of getodk/pyodk
(``HOMEWARD_PYODK_REPO``, by default the ``.mirror/getodk+pyodk/repo`` that the
search tool's ``fetch`` leaves beside the checkout) at tag v1.3.0. The harness
checks every file against its git blob id at that tag, so the suite provably
runs unchanged. Where no snapshot exists the test is skipped, saying why.

``pyodk_live/homeward_live.py`` is loaded into that run as a pytest plugin: it
switches the live tests on as pyodk's maintainers do, and creates the one form
the suite assumes exists.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from lxml import etree

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, REPO_ROOT
from tests.e2e.test_pyodk import write_pyodk_config

pytestmark = pytest.mark.slow  # a real server, and pyodk's suite in a subprocess

HERE = Path(__file__).parent / "pyodk_live"
PYODK_VERSION = "1.3.0"
PYODK_SDIST_SHA256 = "d0f7ece00e1814e0649b645c68ddfe36f26c8972e8ab7c7ae945695315bc3fe1"
# pyodk's [dev] test dependencies, as its pyproject pins them (ruff left out), and pytest.
SUITE_DEPENDENCIES = ("openpyxl==3.1.5", "xlwt==1.3.0", f"pytest=={pytest.__version__}")
SUITE_TAG = f"v{PYODK_VERSION}"
DEFAULT_PYODK_REPO = REPO_ROOT.parent / ".mirror" / "getodk+pyodk" / "repo"
# `git ls-tree -r v1.3.0` of getodk/pyodk: the archive must hold exactly these blobs.
SUITE_BLOBS = {
    "LICENSE.md": "a4c5fe448deb60f7d3fa6d6ba975a8e5f36af0b4",
    "tests/__init__.py": "d878be8101492677ba447cbb4af1d939ec9da525",
    "tests/resources/.pyodk_cache.toml": "6159862b42cbff7c4dc83fac6236ca7a04508f84",
    "tests/resources/.pyodk_config.toml": "4b5ced0849069a376271bffb9f351ab578fb9ceb",
    "tests/resources/__init__.py": "453f4d681d372d5bcb48b6348d86595ee7abc091",
    "tests/resources/comments_data.py": "f8b1bd7678f0e4ffde26c7f3b68296bca735277b",
    "tests/resources/entities_data.py": "4a020fb11b3cbab4dea22d8da7c3736bd229ab82",
    "tests/resources/entity_lists_data.py": "2a5703a0870072e866fcdf022037ae89397539d7",
    "tests/resources/forms/fruits.csv": "144fe0361401a72d56dc75e53ccace43280b3ae1",
    "tests/resources/forms/range_draft.xml": "c0960a953dae3d111b408550515812274c25eac3",
    "tests/resources/forms_data.py": "f0327d7dd4464ff3319b85b7b3121157bbfbde02",
    "tests/resources/projects_data.py": "64073bf6e653c6f579667dfaa1b95d4dcf639975",
    "tests/resources/submissions_data.py": "f549b5c2dbfedb402df485d6863cbb979e9d1825",
    "tests/test_client.py": "22bb3b29ae46cd7c0aeade1c8bf3f657afa6a76b",
    "tests/utils/__init__.py": "6742ae6265de282134aee9c0c1c57a369a621c9c",
    "tests/utils/entity_lists.py": "16ca9b4364e4735ef3ea942b9164d025c8d1cf1c",
    "tests/utils/forms.py": "941c3ac01a710ff4723c7ec6d1cb3bd060601993",
    "tests/utils/md_table.py": "2558b4ec7cfe34983c2b9ea2326dd810fd035a65",
    "tests/utils/submissions.py": "1faeaf3b03cb5dcf26f5b3468d28455e60650ae1",
    "tests/utils/utils.py": "91fb2a517d691aaef27e321f64af68b74cf59040",
}
SUITE_TEST_COUNT = 28
SUITE_FILE = "tests/test_client.py"
PLUGINS = ("-p", "homeward_live", "-p", "no:cacheprovider")
PYODK_FROM_SDIST = ("--no-binary", "pyodk")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@pytest.fixture(scope="session")
def pyodk_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pyodk's tests, read from a git snapshot after checking that they are v1.3.0's."""
    repo = Path(os.environ.get("HOMEWARD_PYODK_REPO", DEFAULT_PYODK_REPO))
    if not (repo / "objects").is_dir() and not (repo / ".git").is_dir():
        pytest.skip(
            f"no git snapshot of getodk/pyodk at {repo} (set HOMEWARD_PYODK_REPO, or fetch "
            "github:getodk/pyodk): its test files are not on PyPI and are not committed here"
        )
    root = tmp_path_factory.mktemp("pyodk-suite")
    for name, blob_id in SUITE_BLOBS.items():
        data = subprocess.run(
            [
                "git",
                f"--git-dir={repo / '.git' if (repo / '.git').is_dir() else repo}",
                "cat-file",
                "blob",
                f"{SUITE_TAG}:{name}",
            ],
            check=True,
            capture_output=True,
        ).stdout
        assert git_blob_id(data) == blob_id, f"{name} differs from pyodk {SUITE_TAG}"
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def _uv() -> str:
    local = REPO_ROOT / ".tools" / "bin" / "uv"  # what `make install` uses
    found = str(local) if local.exists() else shutil.which("uv")
    assert found, "uv is needed to build pyodk's venv: run `make install`"
    return found


@pytest.fixture(scope="session")
def pyodk_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with pyodk built from its sdist (hash-checked) and the suite's test deps."""
    venv = tmp_path_factory.mktemp("pyodk-venv")
    env = os.environ | {"UV_PYTHON_DOWNLOADS": "never", "UV_SYSTEM_CERTS": "1"}
    uv = _uv()
    subprocess.run(
        [uv, "venv", "--quiet", "--allow-existing", str(venv), "--python", sys.executable],
        check=True,
        env=env,
    )
    requirements = venv / "requirements.txt"
    requirements.write_text(
        f"pyodk=={PYODK_VERSION} --hash=sha256:{PYODK_SDIST_SHA256}\n"
        + "".join(f"{dependency}\n" for dependency in SUITE_DEPENDENCIES)
    )
    python = venv / "bin" / "python"
    install = [uv, "pip", "install", "--quiet", "--python", str(python), *PYODK_FROM_SDIST]
    subprocess.run(
        [*install, "-r", str(requirements)],
        check=True,
        env=env,
    )
    return python


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    detail: str


def read_junit(path: Path) -> list[Outcome]:
    outcomes = []
    for case in etree.parse(str(path)).iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}.{case.get('name')}"
        problems = [child for child in case if child.tag in ("failure", "error", "skipped")]
        detail = "\n".join(
            f"{child.tag}: {child.get('message', '')}\n{(child.text or '')[-1500:]}"
            for child in problems
        )
        outcomes.append(Outcome(name, not problems, detail))
    return outcomes


def create_project(base_url: str) -> int:
    with httpx.Client(base_url=base_url, timeout=60) as http:
        session = http.post("/v1/sessions", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert session.status_code == 200, session.text
        headers = {"Authorization": f"Bearer {session.json()['token']}"}
        project = http.post("/v1/projects", json={"name": "pyodk live suite"}, headers=headers)
        assert project.status_code == 200, project.text
        project_id: int = project.json()["id"]
        return project_id


def test_pyodks_own_suite_passes_in_full(
    live_server: str, pyodk_suite: Path, pyodk_python: Path, tmp_path: Path
) -> None:
    project_id = create_project(live_server)
    config = write_pyodk_config(tmp_path / "pyodk_config.toml", live_server, project_id)
    report = tmp_path / "junit.xml"
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    env |= {
        "PYODK_CONFIG_FILE": str(config),
        "PYODK_CACHE_FILE": str(tmp_path / "pyodk_cache.toml"),
        "PYTHONPATH": str(HERE),
    }
    run = subprocess.run(
        [str(pyodk_python), "-m", "pytest", *PLUGINS, "-q", f"--junitxml={report}", SUITE_FILE],
        cwd=pyodk_suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert report.exists(), run.stdout[-4000:] + run.stderr[-4000:]
    outcomes = read_junit(report)
    assert len(outcomes) == SUITE_TEST_COUNT, run.stdout[-4000:]
    failing = {o.name: o.detail for o in outcomes if not o.passed}
    assert not failing, "\n\n".join(f"{name}\n{detail}" for name, detail in failing.items())
