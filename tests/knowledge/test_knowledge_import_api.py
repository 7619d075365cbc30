"""POST /api/knowledge/import: a multipart upload of one export, imported (or dry-run) for the caller's
organisation; its own body limit (import_max_bytes) while every other route keeps max_body_bytes; the upload lives
in the data dir only while the request runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from appliance.auth import orgs, users
from appliance.instance import Instance, cli_context, init_instance
from appliance.knowledge import articles
from appliance.web.app import create_app
from tests.conftest import PASSWORD, Seed, client_for, login, make_client, make_settings
from tests.knowledge.importing import FIXTURES, audit_actions, by_external_id, zip_folder

URL = "/api/knowledge/import"


def leftovers(inst: Instance) -> list[Path]:
    return list(inst.paths.uploads.iterdir()) if inst.paths.uploads.exists() else []


def test_upload_dry_run_import_and_reimport(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    editor = client_for(inst, Seed.email("knowledge_editor"))
    export = zip_folder(FIXTURES / "notion", tmp_path / "export.zip").read_bytes()

    dry = editor.post(URL, files={"file": ("export.zip", export, "application/zip")}, data={"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert body["dry_run"] is True
    assert body["counts"] == {"created": 6, "updated": 0, "unchanged": 0, "failed": 0}
    assert {"source", "outcome", "article_id", "reason"} == set(body["items"][0])
    assert articles.list_articles(inst.db, seed.north).total == 0
    assert leftovers(inst) == []  # the upload is gone once the request is done

    done = editor.post(URL, files={"file": ("export.zip", export, "application/zip")})
    assert done.status_code == 200, done.text
    assert done.json()["dry_run"] is False and done.json()["counts"]["created"] == 6
    ids = {item["article_id"] for item in done.json()["items"]}
    assert ids == {a.id for a in articles.list_articles(inst.db, seed.north).items}
    assert articles.list_articles(inst.db, seed.south).total == 0  # the caller's organisation only
    listed = editor.get("/api/knowledge", params={"category": "Cards"}).json()
    assert {a["latest"]["title"] for a in listed["items"]} == {"Reset your PIN", "Card fees", "Lost card"}
    assert leftovers(inst) == []

    again = editor.post(URL, files={"file": ("export.zip", export)}, data={"format": "notion", "dry_run": "false"})
    assert again.json()["counts"] == {"created": 0, "updated": 0, "unchanged": 6, "failed": 0}
    audited = [json.loads(d) for d in audit_actions(inst, "article.imported")]
    assert audited == [
        {"source": "export.zip", "created": 6, "updated": 0, "unchanged": 0, "failed": 0},
        {"source": "export.zip", "created": 0, "updated": 0, "unchanged": 6, "failed": 0},
    ]  # the dry run recorded nothing

    zendesk = (FIXTURES / "zendesk" / "articles.json").read_bytes()
    json_import = editor.post(URL, files={"file": ("articles.json", zendesk, "application/json")})
    assert json_import.json()["counts"]["created"] == 3
    page = editor.post(URL, files={"file": ("../../Opening hours.md", b"# Opening hours\n\nNine to five.\n")})
    assert page.json()["items"] == [
        {"source": "Opening hours.md", "outcome": "created", "article_id": page.json()["items"][0]["article_id"],
         "reason": ""},
    ]  # fmt: skip
    assert by_external_id(inst, seed.north)["Opening hours.md"].latest.content == "# Opening hours\n\nNine to five.\n"


def test_upload_errors_and_failed_entries(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    editor = client_for(inst, Seed.email("knowledge_editor"))
    with_bad = zip_folder(FIXTURES / "notion", tmp_path / "e.zip", extra={"../evil.md": b"x"}).read_bytes()
    partial = editor.post(URL, files={"file": ("e.zip", with_bad)})
    assert partial.status_code == 200
    assert partial.json()["counts"] == {"created": 6, "updated": 0, "unchanged": 0, "failed": 1}
    [failed] = [i for i in partial.json()["items"] if i["outcome"] == "failed"]
    assert failed == {
        "source": "e.zip/../evil.md", "outcome": "failed", "article_id": None,
        "reason": "unsafe path (absolute, drive letter or '..'): not read",
    }  # fmt: skip

    def refused(response: object, status: int, code: str, text: str) -> None:
        assert getattr(response, "status_code") == status, getattr(response, "text")
        payload = getattr(response, "json")()
        assert payload["code"] == code and text in payload["message"], payload

    refused(editor.post(URL, files={"file": ("notes.zip", b"plain text")}), 400, "bad_input",
            "notes.zip is not a readable zip archive")  # fmt: skip
    refused(editor.post(URL, json={"file": "x"}), 400, "bad_input", "multipart/form-data")
    refused(editor.post(URL, data={"format": "auto"}, files={}), 400, "bad_input", "multipart/form-data")
    refused(editor.post(URL, files={"other": (None, b"auto")}), 400, "bad_input", "no file in the upload")
    refused(editor.post(URL, files={"file": ("", b"")}), 400, "bad_input", "no file in the upload")  # none chosen
    two = [("file", ("a.md", b"# A\n")), ("file", ("b.md", b"# B\n"))]
    refused(editor.post(URL, files=two), 400, "bad_input", "send one file at a time")
    refused(editor.post(URL, files={"file": ("a.md", b"# A\n")}, data={"format": "word"}), 422, "invalid",
            "unknown import format 'word'")  # fmt: skip
    refused(editor.post(URL, files={"file": ("a.md", b"# A\n")}, data={"dry_run": "maybe"}), 422, "invalid",
            "dry_run must be true or false")  # fmt: skip
    refused(editor.post(URL, files={"file": ("a.md", b"# A\n")}, data={"format": "x" * 2000}), 400, "bad_input",
            "form field 'format' is over 1024 bytes")  # fmt: skip
    assert leftovers(inst) == []


def test_permission_and_csrf(inst: Instance, seed: Seed) -> None:
    upload = {"file": ("a.md", b"# A\n")}
    agent = client_for(inst, Seed.email("agent"))
    denied = agent.post(URL, files=upload)
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
    anonymous = make_client(create_app(inst))
    assert anonymous.post(URL, files=upload).json()["code"] == "not_authenticated"

    # A browser form post carries the CSRF token as a field instead of the header.
    browser = make_client(create_app(inst))
    token = login(browser, Seed.email("knowledge_editor", "south"))
    assert browser.post(URL, files=upload).json()["code"] == "csrf_failed"
    form = browser.post(URL, files=upload, data={"csrf_token": token, "dry_run": "on"})
    assert form.status_code == 200, form.text
    assert form.json()["dry_run"] is True and form.json()["counts"]["created"] == 1
    real = browser.post(URL, files=upload, data={"csrf_token": token})
    assert real.json()["counts"]["created"] == 1
    assert [a.latest.title for a in articles.list_articles(inst.db, seed.south).items] == ["A"]
    assert articles.list_articles(inst.db, seed.north).total == 0
    assert leftovers(inst) == []


def _small_limits(tmp_path: Path) -> Instance:
    inst = init_instance(make_settings(tmp_path, max_body_bytes=2048, import_max_bytes=64 * 1024), cli_context())
    org = orgs.create_org(inst.db, cli_context(), "north", "North")
    users.add_user(inst.db, inst.passwords, cli_context(org.id), org.id, "editor@north.example", PASSWORD,
                   "knowledge_editor")  # fmt: skip
    return inst


def test_imports_have_their_own_body_limit(tmp_path: Path) -> None:
    inst = _small_limits(tmp_path)
    client = client_for(inst, "editor@north.example")
    page = b"# Big page\n\n" + b"Words words words.\n" * 1000  # 19 KB: over max_body_bytes, under import_max_bytes
    ok = client.post(URL, files={"file": ("big.md", page)})
    assert ok.status_code == 200 and ok.json()["counts"]["created"] == 1, ok.text
    other = client.post("/api/knowledge", json={"title": "T", "content": page.decode()})
    assert other.status_code == 413 and other.json()["code"] == "payload_too_large"  # everything else keeps 2048

    huge = b"# Huge\n\n" + b"x" * (70 * 1024)
    declared = client.post(URL, files={"file": ("huge.md", huge)})
    assert declared.status_code == 413
    assert declared.json() == {"code": "payload_too_large", "message": "request body larger than 65536 bytes"}

    boundary = "import-boundary"

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.md"\r\n'
               "Content-Type: text/markdown\r\n\r\n").encode()  # fmt: skip
        for _ in range(70):
            yield b"x" * 1024
        yield f"\r\n--{boundary}--\r\n".encode()

    streamed = client.post(URL, content=chunked(), headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert streamed.status_code == 413, streamed.text
    assert streamed.json()["code"] == "payload_too_large"
    assert streamed.json()["retryable"] is False  # raised inside the route as the body streamed in
    assert [a.latest.title for a in articles.list_articles(inst.db, 1).items] == ["Big page"]
    assert leftovers(inst) == []  # the partial upload was removed
    inst.close()
