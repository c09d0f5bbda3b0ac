-- 0025 the admin API (issue 17, item 1): disabled tenants, expiring service keys, and the
-- gateway login's rights to run /v1/admin.
--
-- 1. tenants.disabled_at: a disabled tenant's service keys are refused at once by every
--    gateway process. Every key check already asks the database per request (primary-key
--    lookup, or public.assert_service_key_active inside a /rest/v1 pipeline); both now also
--    refuse a key whose tenant is disabled. The change is logged to cache_invalidations as well
--    (trigger below), so cached JWT keys and verified tokens of the tenant are dropped too.
-- 2. service_keys.expires_at: a key past it is refused like a revoked one. Rotation through the
--    admin API gives the old key an expiry (the overlap window) instead of revoking it.
-- 3. Grants: the gateway login may create tenants and service keys and set exactly the columns
--    the admin API changes. It already held the root key's service master (it verifies key
--    hashes), so these grants let it do through SQL what it could already mint; every change it
--    makes through /v1/admin is audited in the same transaction (AdminAuditing).

ALTER TABLE public.tenants ADD COLUMN disabled_at timestamptz;
ALTER TABLE public.service_keys ADD COLUMN expires_at timestamptz;

DROP TRIGGER tenants_invalidate_caches ON public.tenants;
CREATE TRIGGER tenants_invalidate_caches
    AFTER UPDATE OF jwt_secret_sealed, jwt_secret_nonce, jwt_secret_kek_version, jwt_public_keys, jwt_audience, jwt_issuer,
                    disabled_at
        OR DELETE ON public.tenants
    FOR EACH ROW EXECUTE FUNCTION public.record_cache_invalidation('tenant_keys', 'id');

DROP TRIGGER service_keys_invalidate_caches ON public.service_keys;
CREATE TRIGGER service_keys_invalidate_caches
    AFTER UPDATE OF revoked_at, expires_at, scopes, key_hash, tenant_id OR DELETE ON public.service_keys
    FOR EACH ROW EXECUTE FUNCTION public.record_cache_invalidation('service_key', 'tenant_id');

-- As in 0014, plus expiry and the tenant's state; same SQLSTATE, so the gateway answers the same 401.
CREATE OR REPLACE FUNCTION public.assert_service_key_active(key_id uuid) RETURNS void
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM public.service_keys k JOIN public.tenants t ON t.id = k.tenant_id
        WHERE k.id = key_id AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
          AND t.disabled_at IS NULL
    ) THEN
        RAISE EXCEPTION 'the service key is revoked' USING ERRCODE = 'PGW41';
    END IF;
END;
$$;

-- jwt_*: PUT /v1/admin/tenants/{id}/jwt (0009 already granted the sealed-secret columns).
GRANT INSERT (name), UPDATE (disabled_at, jwt_public_keys, jwt_audience, jwt_issuer) ON public.tenants TO privacy_gateway;
GRANT INSERT (id, tenant_id, name, key_hash, scopes, expires_at), UPDATE (revoked_at, expires_at)
    ON public.service_keys TO privacy_gateway;
