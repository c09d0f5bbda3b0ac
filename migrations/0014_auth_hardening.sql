-- 0014 auth hardening (issue 12, items 9 and 10).
--
-- 1. No JWT secret in plaintext at rest: tenants.jwt_secret (0001) is dropped. Every secret
--    must be sealed under its tenant's KEK first (jwt_secret_sealed, 0009). A migration has no
--    root key and cannot seal, so this one refuses — and changes nothing — while any tenant still
--    holds a plaintext secret, telling the operator to run `privacyctl tenant seal-secrets`
--    (with the root key), which seals them all; then `privacyctl migrate` again.
-- 2. Per-tenant JWT audience and issuer (`privacyctl tenant set-jwt --audience/--issuer`):
--    when set, the gateway refuses tokens whose aud/iss differ.
-- 3. A revoked service key is refused on the next request by every gateway process: the
--    gateway starts each /rest/v1 pipeline with public.assert_service_key_active(key id), which
--    fails (SQLSTATE PGW41) and aborts the request's transaction once the key is revoked.

DO $$
DECLARE
    plaintext integer;
BEGIN
    SELECT count(*) INTO plaintext FROM public.tenants WHERE jwt_secret IS NOT NULL;
    IF plaintext > 0 THEN
        RAISE EXCEPTION '% tenant(s) still hold a plaintext JWT secret (tenants.jwt_secret), which this migration drops', plaintext
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'seal them first with the root key: privacyctl tenant seal-secrets; then run privacyctl migrate again';
    END IF;
END;
$$;

ALTER TABLE public.tenants DROP COLUMN jwt_secret;

ALTER TABLE public.tenants
    ADD COLUMN jwt_audience text CHECK (btrim(jwt_audience) <> '' AND length(jwt_audience) <= 1000),
    ADD COLUMN jwt_issuer   text CHECK (btrim(jwt_issuer) <> '' AND length(jwt_issuer) <= 1000);

-- Runs as its owner (the gateway's request roles are already in effect when it runs, and they
-- have no right on service_keys); only the gateway's login may call it.
CREATE FUNCTION public.assert_service_key_active(key_id uuid) RETURNS void
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM public.service_keys WHERE id = key_id AND revoked_at IS NULL) THEN
        RAISE EXCEPTION 'the service key is revoked' USING ERRCODE = 'PGW41';
    END IF;
END;
$$;
REVOKE ALL ON FUNCTION public.assert_service_key_active(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.assert_service_key_active(uuid) TO privacy_gateway;
