"""Drives a running privacy-gateway with the real supabase-py client, unchanged but for the URL.

Run by scripts/test after `swift test` (see conftest.py for the gateway). Two users of one tenant
(alice, bob) and one of another (carol), plus the anon client every Supabase app starts with
(`create_client(url, key)` sends the key as both `apikey` and `Authorization: Bearer`); each sees
and changes exactly what its policies allow.
"""
import csv
import io
import uuid
from decimal import Decimal

import pytest
from postgrest.exceptions import APIError
from supabase import ClientOptions, create_client

from conftest import jwt

ALICE, BOB, CAROL = (str(uuid.uuid4()) for _ in range(3))


def anon(gateway, tenant="acme"):
    return create_client(gateway.url, gateway.tenants[tenant]["apikey"])


def user(gateway, tenant, sub):
    token = jwt(gateway.tenants[tenant]["secret"], sub)
    return create_client(gateway.url, gateway.tenants[tenant]["apikey"],
                         options=ClientOptions(headers={"Authorization": f"Bearer {token}"}))


@pytest.fixture(scope="module")
def clients(gateway):
    alice, bob, carol = user(gateway, "acme", ALICE), user(gateway, "acme", BOB), user(gateway, "globex", CAROL)
    # Registers bob and carol as subjects of their tenants.
    bob.table("projects").select("id").execute()
    carol.table("projects").select("id").execute()
    alice.table("projects").insert([
        {"name": "sb-private", "type": "website", "user_id": ALICE, "is_public": False},
        {"name": "sb-public", "type": "website", "user_id": ALICE, "is_public": True},
    ]).execute()
    yield {"anon": anon(gateway), "alice": alice, "bob": bob, "carol": carol}
    # The gateway is shared by the session: leave no public project for other modules' users to see.
    alice.table("projects").delete().like("name", "sb-%").execute()


def names(response):
    return sorted(row["name"] for row in response.data)


def test_the_anon_client_sends_its_key_as_bearer_and_sees_what_anon_may(clients, gateway):
    public = clients["anon"].table("projects").select("name").like("name", "sb-%").execute()
    assert names(public) == ["sb-public"]
    with pytest.raises(APIError) as denied:
        clients["anon"].table("projects").insert({"name": "anon's", "type": "website"}).execute()
    assert denied.value.code == "42501"
    # Another tenant's key as the bearer is never "no user".
    mixed = create_client(gateway.url, gateway.tenants["acme"]["apikey"],
                          options=ClientOptions(headers={"Authorization": "Bearer " + gateway.tenants["globex"]["apikey"]}))
    with pytest.raises(APIError) as refused:
        mixed.table("projects").select("name").execute()
    assert refused.value.code == "PGRST301"
    # Globex's anon sees none of acme's rows.
    assert anon(gateway, "globex").table("projects").select("name").like("name", "sb-%").execute().data == []


def test_users_see_exactly_their_rows_with_head_counts(clients):
    for client, expected in (("alice", 2), ("bob", 1), ("carol", 0), ("anon", 1)):
        head = clients[client].table("projects").select("*", count="exact", head=True).like("name", "sb-%").execute()
        assert head.count == expected, client
    planned = clients["alice"].table("projects").select("name", count="planned").like("name", "sb-%").execute()
    assert isinstance(planned.count, int)
    estimated = clients["alice"].table("projects").select("name", count="estimated").like("name", "sb-%").execute()
    assert estimated.count == 2


def test_upsert_inserts_then_updates_only_own_rows(clients):
    alice, bob = clients["alice"], clients["bob"]
    row_id = str(uuid.uuid4())
    created = alice.table("projects").upsert({"id": row_id, "name": "sb-upsert", "type": "website", "user_id": ALICE}).execute()
    assert [row["name"] for row in created.data] == ["sb-upsert"]
    updated = alice.table("projects").upsert({"id": row_id, "name": "sb-upsert-2", "type": "website", "user_id": ALICE}).execute()
    assert [row["name"] for row in updated.data] == ["sb-upsert-2"]
    assert alice.table("projects").select("name").eq("id", row_id).single().execute().data == {"name": "sb-upsert-2"}
    # Bob's upsert of alice's (hidden) row cannot take it over.
    with pytest.raises(APIError) as denied:
        bob.table("projects").upsert({"id": row_id, "name": "bob's", "type": "website", "user_id": BOB}).execute()
    assert denied.value.code in ("42501", "23505")
    assert alice.table("projects").select("name").eq("id", row_id).single().execute().data == {"name": "sb-upsert-2"}
    alice.table("projects").delete().eq("id", row_id).execute()


def test_csv_and_maybe_single(clients):
    text = clients["alice"].table("projects").select("name,is_public").like("name", "sb-p%").order("name").csv().execute().data
    assert list(csv.reader(io.StringIO(text))) == [["name", "is_public"], ["sb-private", "false"], ["sb-public", "true"]]
    assert clients["bob"].table("projects").select("name").eq("name", "sb-private").csv().execute().data == "name"
    missing = clients["alice"].table("projects").select("name").eq("name", "sb-none").maybe_single().execute()
    assert missing is None or missing.data is None
    found = clients["alice"].table("projects").select("name").eq("name", "sb-public").maybe_single().execute()
    assert found.data == {"name": "sb-public"}


def test_updates_matching_nothing_answer_empty_and_denials_are_explained(clients):
    alice, bob, carol = clients["alice"], clients["bob"], clients["carol"]
    # Bob cannot see alice's private project; carol is in another tenant: no match, no error.
    assert bob.table("projects").update({"name": "x"}).eq("name", "sb-private").execute().data == []
    assert carol.table("projects").update({"name": "x"}).eq("name", "sb-public").execute().data == []
    assert bob.table("projects").delete().eq("name", "sb-private").execute().data == []
    # Bob sees alice's public project but may not change it: 403 naming the policy.
    with pytest.raises(APIError) as denied:
        bob.table("projects").update({"name": "x"}).eq("name", "sb-public").execute()
    assert denied.value.code == "42501"
    assert "Users can update their projects" in (denied.value.message + str(denied.value.details))
    assert names(alice.table("projects").select("name").like("name", "sb-p%").execute()) == ["sb-private", "sb-public"]


def test_an_insert_the_select_policy_hides_is_explained_and_return_minimal_succeeds(gateway):
    # An anonymous visitor with the session token the seeds' apps mint: the insert policy admits the
    # event, no select policy lets anon read it back.
    visit = "sb-visit-" + uuid.uuid4().hex
    token = jwt(gateway.tenants["acme"]["secret"], None, role="anon", claims={"session_id": visit})
    visitor = create_client(gateway.url, gateway.tenants["acme"]["apikey"],
                            options=ClientOptions(headers={"Authorization": f"Bearer {token}"}))
    event = {"session_id": visit, "event_type": "page_view"}
    with pytest.raises(APIError) as hidden:
        visitor.table("analytics").insert(event).execute()
    assert hidden.value.code == "42501"
    assert 'new row violates row-level security policy for table "analytics"' in hidden.value.message
    assert "return=minimal" in (hidden.value.hint or "")
    assert visitor.table("analytics").insert(event, returning="minimal").execute().data == []
    # A visitor cannot record an event for another session, minimal or not.
    with pytest.raises(APIError) as forged:
        visitor.table("analytics").insert({"session_id": "sb-someone-else", "event_type": "page_view"}, returning="minimal").execute()
    assert forged.value.code == "42501"


def conversation(alice):
    brand = alice.table("brands").insert({"name": "sb brand", "user_id": ALICE}).execute().data[0]["id"]
    session = alice.table("conversation_sessions").insert({"brand_id": brand, "user_id": ALICE}).execute().data[0]["id"]
    # One request each: the history orders by created_at, the transaction's time.
    for role, content, cost in (("user", "hi", 0.01), ("assistant", "hello", 0.02)):
        alice.table("conversation_messages").insert({
            "session_id": session, "brand_id": brand, "user_id": ALICE, "role": role, "content": content,
            "tokens_used": 10, "cost_usd": cost, "provider": "openai", "model_used": "gpt"}).execute()
    return session


def test_rpc_of_seed_functions_and_a_view(clients):
    alice, bob, carol = clients["alice"], clients["bob"], clients["carol"]
    session = conversation(alice)
    assert Decimal(str(alice.rpc("get_session_cost", {"p_session_id": session}).execute().data)) == Decimal("0.03")
    assert Decimal(str(bob.rpc("get_session_cost", {"p_session_id": session}).execute().data)) == 0
    history = alice.rpc("get_conversation_history", {"p_session_id": session}).eq("role", "assistant").execute()
    assert [row["content"] for row in history.data] == ["hello"]
    assert carol.rpc("get_conversation_history", {"p_session_id": session}).execute().data == []
    by_get = alice.rpc("get_conversation_history", {"p_session_id": session, "p_limit": 1}, get=True).execute()
    assert [row["content"] for row in by_get.data] == ["hello"]
    with pytest.raises(APIError) as undeclared:
        alice.rpc("cleanup_old_sessions", {}).execute()
    assert undeclared.value.code == "PGRST202"
    with pytest.raises(APIError) as anon_call:
        clients["anon"].rpc("get_session_cost", {"p_session_id": session}).execute()
    assert anon_call.value.code == "42501"
    assert alice.rpc("complete_conversation_session", {"p_session_id": session}).execute().data is True
    assert bob.rpc("complete_conversation_session", {"p_session_id": session}).execute().data is False

    usage = alice.table("provider_usage_stats").select("provider,request_count").execute()
    assert usage.data == [{"provider": "openai", "request_count": 2}]
    assert bob.table("provider_usage_stats").select("*").execute().data == []
    assert carol.table("daily_message_volume").select("*").execute().data == []


def test_embedding_both_ways_nested_inner_and_filtered_within_each_tables_policies(clients):
    alice = clients["alice"]
    projects = {p["name"]: p["id"] for p in alice.table("projects").select("id, name").like("name", "sb-%").execute().data}
    alice.table("sitemaps").insert([{"project_id": projects["sb-private"], "title": "sb-map-private"},
                                    {"project_id": projects["sb-public"], "title": "sb-map-public"}]).execute()
    try:
        mine = alice.table("projects").select("name, sitemaps(title)").in_("name", ["sb-private", "sb-public"]).order("name").execute()
        assert mine.data == [{"name": "sb-private", "sitemaps": [{"title": "sb-map-private"}]},
                             {"name": "sb-public", "sitemaps": [{"title": "sb-map-public"}]}]
        # Bob sees the public project and its sitemap only; the private one exists for him in no direction.
        theirs = clients["bob"].table("projects").select("name, sitemaps(title)").in_("name", ["sb-private", "sb-public"]).execute()
        assert theirs.data == [{"name": "sb-public", "sitemaps": [{"title": "sb-map-public"}]}]
        up = clients["bob"].table("sitemaps").select("title, projects(name)").like("title", "sb-map-%").execute()
        assert up.data == [{"title": "sb-map-public", "projects": {"name": "sb-public"}}]
        # !inner with a filter on the embedded rows keeps only the parents that have a matching child.
        inner = alice.table("projects").select("name, sitemaps!inner(title)").eq("sitemaps.title", "sb-map-public").execute()
        assert inner.data == [{"name": "sb-public", "sitemaps": [{"title": "sb-map-public"}]}]
        # Another tenant's user sees nothing of it, embedded or not.
        assert clients["carol"].table("sitemaps").select("title, projects(name)").like("title", "sb-map-%").execute().data == []
        # Nested: a wireframe of the private sitemap, read down two levels and up two levels.
        maps = {m["title"]: m["id"] for m in alice.table("sitemaps").select("id, title").like("title", "sb-map-%").execute().data}
        frame = alice.table("wireframes").insert({"sitemap_id": maps["sb-map-private"], "title": "sb-frame"}, returning="representation") \
            .execute()
        assert [row["title"] for row in frame.data] == ["sb-frame"]
        nested = alice.table("projects").select("name, sitemaps(title, wireframes(title))").eq("name", "sb-private").execute()
        assert nested.data == [{"name": "sb-private", "sitemaps": [{"title": "sb-map-private", "wireframes": [{"title": "sb-frame"}]}]}]
        upward = alice.table("wireframes").select("title, sitemaps(title, projects(name))").eq("title", "sb-frame").execute()
        assert upward.data == [{"title": "sb-frame", "sitemaps": {"title": "sb-map-private", "projects": {"name": "sb-private"}}}]
        assert clients["bob"].table("wireframes").select("title, sitemaps(title)").eq("title", "sb-frame").execute().data == []
        # or= across the embedded resource, as supabase-js/py send it: the parent matches by its own
        # column or by a related row the caller can see; bob cannot reach the private map this way.
        either = "name.eq.sb-none,sitemaps.title.eq.sb-map-private"
        assert alice.table("projects").select("name, sitemaps!inner(title)").or_(either).execute().data == \
            [{"name": "sb-private", "sitemaps": [{"title": "sb-map-private"}]}]
        assert clients["bob"].table("projects").select("name, sitemaps!inner(title)").or_(either).execute().data == []
        # A write's representation embeds too, under the embedded table's policies.
        renamed = alice.table("sitemaps").update({"description": "sb"}).eq("title", "sb-map-public") \
            .select("title, projects(name)").execute()
        assert renamed.data == [{"title": "sb-map-public", "projects": {"name": "sb-public"}}]
    finally:
        alice.table("wireframes").delete().eq("title", "sb-frame").execute()
        alice.table("sitemaps").delete().like("title", "sb-map-%").execute()

