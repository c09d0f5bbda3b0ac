-- 0027 tenant JWT settings (issue 17, item 1).
--
-- 1. HS256 secret rotation with an overlap window. Setting a new secret through
--    PUT /v1/admin/tenants/{id}/jwt (or `privacyctl tenant set-jwt`) moves the current sealed
--    secret to jwt_previous_secret_* with an end time; both verify tokens until then, so signed-in
--    users are not logged out at once. After the end the gateway ignores the previous secret and
--    clears the columns. Sealed exactly as the current one (same purpose, associated data: tenant
--    and KEK version), never in plaintext; KEK rotation rewraps it too.
-- 2. jwt_jwks_url: RS256/ES256 keys fetched from the tenant's identity provider (JWKS), cached by
--    each gateway. https only (http for loopback, for tests); the gateway refuses http unless its
--    development override is set.

ALTER TABLE public.tenants
    ADD COLUMN jwt_previous_secret_sealed      bytea       CHECK (octet_length(jwt_previous_secret_sealed) > 16),
    ADD COLUMN jwt_previous_secret_nonce       bytea       CHECK (octet_length(jwt_previous_secret_nonce) = 24),
    ADD COLUMN jwt_previous_secret_kek_version integer,
    ADD COLUMN jwt_previous_secret_expires_at  timestamptz,
    ADD COLUMN jwt_jwks_url                    text        CHECK (jwt_jwks_url ~ '^https?://[^\s]+$' AND length(jwt_jwks_url) <= 2000),
    ADD CONSTRAINT tenants_jwt_previous_secret_complete CHECK (
        (jwt_previous_secret_sealed IS NULL) = (jwt_previous_secret_nonce IS NULL)
        AND (jwt_previous_secret_sealed IS NULL) = (jwt_previous_secret_kek_version IS NULL)
        AND (jwt_previous_secret_sealed IS NULL) = (jwt_previous_secret_expires_at IS NULL)),
    ADD CONSTRAINT tenants_jwt_previous_secret_kek_fk FOREIGN KEY (id, jwt_previous_secret_kek_version)
        REFERENCES keyring.tenant_keys (tenant_id, version);

DROP TRIGGER tenants_invalidate_caches ON public.tenants;
CREATE TRIGGER tenants_invalidate_caches
    AFTER UPDATE OF jwt_secret_sealed, jwt_secret_nonce, jwt_secret_kek_version, jwt_public_keys, jwt_audience, jwt_issuer,
                    disabled_at, jwt_previous_secret_sealed, jwt_previous_secret_expires_at, jwt_jwks_url
        OR DELETE ON public.tenants
    FOR EACH ROW EXECUTE FUNCTION public.record_cache_invalidation('tenant_keys', 'id');

GRANT UPDATE (jwt_previous_secret_sealed, jwt_previous_secret_nonce, jwt_previous_secret_kek_version,
              jwt_previous_secret_expires_at, jwt_jwks_url)
    ON public.tenants TO privacy_gateway;

-- 3. KEK rotations (issue 17, item 1: start, progress, status). One row per rotation of one
--    tenant's or every tenant's KEK; at most one unfinished at a time. Progress is not counted
--    here but derived from the keyring itself (a tenant is done when all its live KEK versions
--    were created after the rotation started; a subject key is done when its KEK version was),
--    so a process killed mid-way leaves nothing stale: the next run skips what is done and
--    resumes a tenant's half-rewrapped keys (Keyring.rotateTenantKey) without rotating it twice.
--    The process running it holds the session advisory lock (27, 1) (pg_locks shows it running).
CREATE TABLE keyring.kek_rotations (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid        REFERENCES public.tenants (id) ON DELETE CASCADE,  -- NULL: every tenant
    started_at  timestamptz NOT NULL DEFAULT now(),
    started_by  text        NOT NULL CHECK (length(started_by) BETWEEN 1 AND 200),
    finished_at timestamptz CHECK (finished_at >= started_at),
    last_error  text        CHECK (length(last_error) <= 1000)
);
CREATE UNIQUE INDEX kek_rotations_one_unfinished ON keyring.kek_rotations ((true)) WHERE finished_at IS NULL;
GRANT SELECT, INSERT, UPDATE (finished_at, last_error) ON keyring.kek_rotations TO privacy_gateway;
