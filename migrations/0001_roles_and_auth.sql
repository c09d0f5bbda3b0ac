-- 0001 roles, tenants, service keys and the auth schema (DESIGN.md §3).
--
-- Applied by the migration runner inside one transaction as the owner role.
-- Roles are cluster-wide while this file runs per database, and tests migrate two
-- databases of one cluster concurrently: every role is created in a DO block that
-- checks pg_roles first and also swallows the race where another transaction
-- created it in between (duplicate_object, or unique_violation on pg_authid).

-- ---------------------------------------------------------------------------
-- Request roles: anon, authenticated, service_role.
-- Unlike Supabase, service_role does NOT bypass RLS: tenant isolation binds it too.
-- ---------------------------------------------------------------------------
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created concurrently by a migration of another database
            END;
        END IF;
        -- A pre-existing role (e.g. a Supabase-style service_role) must not escape RLS.
        -- ALTER needs superuser for these attributes; without it this fails the
        -- migration, which is the intended fail-closed outcome.
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles
                   WHERE rolname = r AND (rolsuper OR rolbypassrls)) THEN
            EXECUTE format('ALTER ROLE %I NOSUPERUSER NOBYPASSRLS', r);
        END IF;
    END LOOP;
END
$roles$;

-- ---------------------------------------------------------------------------
-- The gateway's login role. No password here (dev uses trust auth; production
-- sets one). NOINHERIT (as PostgREST's authenticator): the gateway holds only the
-- privileges granted to it below and gets a request role's privileges only after
-- SET LOCAL ROLE, so a statement sent before SET ROLE cannot touch app tables.
-- ---------------------------------------------------------------------------
DO $gateway$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'privacy_gateway') THEN
        BEGIN
            CREATE ROLE privacy_gateway LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS
                NOCREATEDB NOCREATEROLE NOREPLICATION;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles
               WHERE rolname = 'privacy_gateway' AND (rolsuper OR rolbypassrls)) THEN
        ALTER ROLE privacy_gateway NOSUPERUSER NOBYPASSRLS;
    END IF;
END
$gateway$;

-- GRANT anon, authenticated, service_role TO privacy_gateway, idempotently and
-- safe against a concurrent grant (unique index on pg_auth_members).
DO $membership$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF NOT pg_catalog.pg_has_role('privacy_gateway', r, 'MEMBER') THEN
            BEGIN
                EXECUTE format('GRANT %I TO privacy_gateway', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END
$membership$;

GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role, privacy_gateway;

-- ---------------------------------------------------------------------------
-- Tenants and service keys (read by the gateway itself, never by request roles).
-- ---------------------------------------------------------------------------
CREATE TABLE public.tenants (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name            text        NOT NULL UNIQUE CHECK (btrim(name) <> ''),
    jwt_secret      text        NULL,               -- HS256 secret; NULL = none configured
    jwt_public_keys jsonb       NOT NULL DEFAULT '[]'::jsonb
                                CHECK (jsonb_typeof(jwt_public_keys) = 'array'),  -- RS256/ES256 keys
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.service_keys (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid        NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    name         text,
    key_hash     bytea       NOT NULL CHECK (octet_length(key_hash) = 32), -- keyed HMAC of the secret
    scopes       text[]      NOT NULL CHECK (
                     cardinality(scopes) > 0
                     AND array_position(scopes, NULL) IS NULL
                     AND scopes <@ ARRAY['data:read', 'data:write', 'secrets:read', 'secrets:write',
                                         'privacy:export', 'privacy:erase', 'audit:read', 'admin']::text[]
                 ),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX service_keys_tenant_id_idx ON public.service_keys (tenant_id);
-- Keys are looked up by their keyed hash; a collision would be a bug, never two keys.
CREATE UNIQUE INDEX service_keys_key_hash_key ON public.service_keys (key_hash);

-- ---------------------------------------------------------------------------
-- auth schema: registry of each tenant's data subjects + Supabase-compatible helpers.
-- ---------------------------------------------------------------------------
CREATE SCHEMA IF NOT EXISTS auth;

CREATE TABLE auth.users (
    id           uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz,
    -- Target of the app tables' (tenant_id, user_id) foreign keys: a row can only
    -- name a subject registered in its own tenant, so erasing a subject never
    -- cascades into another tenant's rows.
    CONSTRAINT users_tenant_id_id_key UNIQUE (tenant_id, id)
);
-- (tenant_id, id) unique index above also serves lookups by tenant.

-- Exactly as Supabase defines them, so the seeds' policies run unchanged.
CREATE FUNCTION auth.uid() RETURNS uuid
    LANGUAGE sql STABLE
AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;

CREATE FUNCTION auth.role() RETURNS text
    LANGUAGE sql STABLE
AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;

CREATE FUNCTION auth.jwt() RETURNS jsonb
    LANGUAGE sql STABLE
AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

-- Set per request by the gateway (set_config('request.tenant_id', …, true)).
CREATE FUNCTION auth.tenant_id() RETURNS uuid
    LANGUAGE sql STABLE
AS $$
    SELECT nullif(current_setting('request.tenant_id', true), '')::uuid
$$;

-- ---------------------------------------------------------------------------
-- Grants
-- ---------------------------------------------------------------------------
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role, privacy_gateway;
GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.jwt(), auth.tenant_id()
    TO anon, authenticated, service_role, privacy_gateway;

-- The gateway itself: authenticate keys, verify JWTs, register subjects, check migrations.
GRANT SELECT ON public.tenants TO privacy_gateway;
GRANT SELECT, UPDATE (last_used_at) ON public.service_keys TO privacy_gateway;
GRANT SELECT, INSERT, UPDATE (last_seen_at) ON auth.users TO privacy_gateway;
GRANT SELECT ON public.schema_migrations TO privacy_gateway;
-- Request roles get nothing on tenants, service_keys or auth.users (foreign-key
-- checks against auth.users run with the owner's rights and need no grant).
