"""Issue #22, finding 2 (the part without the CLI-through-API): key scopes (read, write, admin),
POST/DELETE /v1/keys for administrators, revocation effective on the next request, and the last
use of each key in ``apikey list`` and GET /v1/keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from analyzer.cli import main
from analyzer.config import Settings
from analyzer.store.database import Store
from tests.integration.api_support import PARKING


@pytest.fixture()
def client(api_store_file: Path, tmp_path: Path, copy_store) -> Iterator[TestClient]:
    from api.app import create_app

    path = copy_store(api_store_file, tmp_path)
    settings = Settings(
        store_path=path, tagger_model=str(tmp_path / "no-tagger"), rate_limit_per_minute=100_000
    )
    with TestClient(create_app(settings)) as c:
        yield c


def key_of(client: TestClient, scope: str) -> dict[str, str]:
    from api.keys import create_key

    key, _ = create_key(client.app.state.civicpulse.store, f"{scope} key", scope)
    return {"Authorization": f"Bearer {key}"}


def test_scopes(client: TestClient) -> None:
    read, write, admin = key_of(client, "read"), key_of(client, "write"), key_of(client, "admin")
    rename = {"label": "Cars where they should not be"}
    for who, allowed in ((read, False), (write, True), (admin, True)):
        assert client.get("/v1/records", headers=who).status_code == 200
        r = client.patch(f"/v1/themes/{PARKING}", json=rename, headers=who)
        assert r.status_code == (200 if allowed else 403), r.text
        if not allowed:
            assert r.json()["code"] == "forbidden" and "needs a write key" in r.json()["detail"]
        post = client.post("/open311/v2/requests.json", data={"api_key": who["Authorization"][7:]})
        assert (post.status_code == 403) == (not allowed), post.text
    for who in (read, write):
        assert client.get("/v1/keys", headers=who).status_code == 403
        assert client.post("/v1/keys", json={"name": "x"}, headers=who).status_code == 403
    assert client.get("/v1/keys").status_code == 401


def test_admin_makes_lists_and_revokes_keys(client: TestClient) -> None:
    admin = key_of(client, "admin")
    made = client.post("/v1/keys", json={"name": "intake app", "scope": "read"}, headers=admin)
    assert made.status_code == 201, made.text
    new = made.json()
    assert new["scope"] == "read" and new["key"].startswith(f"cp_{new['key_id']}.")
    use = {"Authorization": f"Bearer {new['key']}"}
    assert client.get("/v1/records", headers=use).status_code == 200  # verified and cached

    listed = {k["key_id"]: k for k in client.get("/v1/keys", headers=admin).json()["items"]}
    assert listed[new["key_id"]]["scope"] == "read"
    assert listed[new["key_id"]]["last_used_at"] is not None  # used just now
    assert all(new["key"] not in str(k) for k in listed.values())  # never the key itself

    gone = client.delete(f"/v1/keys/{new['key_id']}", headers=admin)
    assert gone.status_code == 200 and gone.json() == {"key_id": new["key_id"], "revoked": True}
    # the very next request with it is refused, though it was verified (and cached) before
    after = client.get("/v1/records", headers=use)
    assert after.status_code == 401 and after.json()["detail"] == "invalid or revoked API key"
    assert client.delete(f"/v1/keys/{new['key_id']}", headers=admin).status_code == 404
    assert client.delete("/v1/keys/not-a-key-id", headers=admin).status_code == 422
    bad = client.post("/v1/keys", json={"name": "x", "scope": "root"}, headers=admin)
    assert bad.status_code == 422


def test_keys_are_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(paths["/v1/keys"]) and "delete" in paths["/v1/keys/{key_id}"]


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_apikey_cli_scope_and_last_use(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from api.keys import verify_key

    db = str(tmp_path / "keys.duckdb")
    code, out, err = cli(
        ["apikey", "create", "--name", "kiosk", "--scope", "read", "--store", db], capsys
    )
    assert code == 0, err
    key = out.strip().splitlines()[-1]
    code, out, _ = cli(["apikey", "list", "--store", db], capsys)
    assert code == 0
    header, row = out.strip().splitlines()
    assert header.split("\t")[-2:] == ["scope", "last_used_at"]
    assert row.split("\t")[-2:] == ["read", "never"]
    with Store(db) as store:
        assert verify_key(store, key) is not None
    code, out, _ = cli(["apikey", "list", "--store", db], capsys)
    last = out.strip().splitlines()[1].split("\t")[-1]
    assert last != "never" and last.endswith("Z")
    code, _, err = cli(
        ["apikey", "create", "--name", "x", "--scope", "root", "--store", db], capsys
    )
    assert code == 2 and "--scope must be one of read, write, admin" in err


def test_keys_made_before_scopes_keep_writing(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE api_keys (key_id VARCHAR PRIMARY KEY, name VARCHAR, key_hash VARCHAR, "
        "created_at TIMESTAMPTZ DEFAULT current_timestamp, revoked BOOLEAN DEFAULT false)"
    )
    con.execute("INSERT INTO api_keys (key_id, name, key_hash) VALUES ('0123456789ab', 'o', 'h')")
    con.close()
    with Store(path) as store:
        rows = store.con.execute("SELECT scope, last_used_at IS NULL FROM api_keys").fetchall()
    assert rows == [("write", True)]
