"""Drives a running privacy-gateway with postgrest-py, the client supabase-py uses.

Run by scripts/test after `swift test`; needs TEST_DATABASE_URL (the throwaway cluster) and the
built executables in BIN_DIR. Two users of one tenant and one of another each see exactly what
their policies allow.
"""
import uuid

import pytest
from postgrest import SyncPostgrestClient
from postgrest.exceptions import APIError

from conftest import jwt


def client(gateway, tenant, user):
    headers = {"apikey": gateway.tenants[tenant]["apikey"]}
    if user:
        headers["Authorization"] = "Bearer " + jwt(gateway.tenants[tenant]["secret"], user)
    return SyncPostgrestClient(gateway.url + "/rest/v1", headers=headers)


ALICE, BOB, CAROL = (str(uuid.uuid4()) for _ in range(3))


def test_two_users_and_another_tenant_see_exactly_what_policies_allow(gateway):
    alice = client(gateway, "acme", ALICE)
    bob = client(gateway, "acme", BOB)
    carol = client(gateway, "globex", CAROL)

    inserted = alice.from_("projects").insert([
        {"name": "alpha", "type": "website", "user_id": ALICE, "is_public": False},
        {"name": "beta", "type": "website", "user_id": ALICE, "is_public": True},
        {"name": "gamma", "type": "landing-page", "user_id": ALICE, "is_public": False},
    ]).execute()
    assert [row["name"] for row in inserted.data] == ["alpha", "beta", "gamma"]

    mine = alice.from_("projects").select("name", count="exact").order("name", desc=True).range(0, 1).execute()
    assert [row["name"] for row in mine.data] == ["gamma", "beta"]
    assert mine.count == 3

    filtered = alice.from_("projects").select("name").eq("type", "website").in_("name", ["alpha", "gamma"]).execute()
    assert [row["name"] for row in filtered.data] == ["alpha"]

    single = alice.from_("projects").select("name,is_public").eq("name", "beta").single().execute()
    assert single.data == {"name": "beta", "is_public": True}

    # Bob, same tenant: only the public project. Carol, another tenant: nothing.
    assert [row["name"] for row in bob.from_("projects").select("name").execute().data] == ["beta"]
    assert carol.from_("projects").select("*").execute().data == []

    updated = alice.from_("projects").update({"name": "alpha-2"}).eq("name", "alpha").execute()
    assert [row["name"] for row in updated.data] == ["alpha-2"]

    with pytest.raises(APIError) as denied:
        bob.from_("projects").update({"name": "stolen"}).eq("name", "beta").execute()
    assert denied.value.code == "42501"

    deleted = alice.from_("projects").delete().eq("name", "gamma").execute()
    assert [row["name"] for row in deleted.data] == ["gamma"]
    remaining = alice.from_("projects").select("name").order("name").execute()
    assert [row["name"] for row in remaining.data] == ["alpha-2", "beta"]


def test_bad_requests_get_postgrest_errors(gateway):
    alice = client(gateway, "acme", ALICE)
    with pytest.raises(APIError) as unknown:
        alice.from_("no_such_table").select("*").execute()
    assert unknown.value.code == "PGRST205"
    with pytest.raises(APIError) as column:
        alice.from_("projects").select("secret_column").execute()
    assert column.value.code == "42703"
