-- 0016 cache invalidation across gateway processes (issue 13, item 6).
--
-- Each gateway process caches tenants' parsed JWT keys (secret, public keys, audience, issuer),
-- the tokens they verified, and service keys. A change to any of them, made by any process or
-- by privacyctl, appends a row here (by trigger, in the changing transaction, so a rolled-back
-- change invalidates nothing). Every gateway polls `seq > last seen` a few times a second and
-- drops what the rows name. A log read by sequence rather than LISTEN/NOTIFY: a notification
-- sent while a process's listening connection is down is lost, and catching up after a reconnect
-- needs exactly this query anyway; the poll is one index range scan on a table holding a day of
-- administrative changes.

CREATE TABLE public.cache_invalidations (
    seq        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('tenant_keys', 'service_key')),
    at         timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION public.record_cache_invalidation() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO public.cache_invalidations (tenant_id, kind)
    -- TG_ARGV: the kind, and the column holding the tenant's id (a plpgsql record cannot name a
    -- column the other table lacks, even in a branch not taken).
    VALUES ((pg_catalog.to_jsonb(OLD) ->> TG_ARGV[1])::uuid, TG_ARGV[0]);
    -- Rows older than a day are of no use to a running gateway (it polls every 250 ms).
    DELETE FROM public.cache_invalidations WHERE at < now() - interval '1 day';
    RETURN NULL;
END;
$$;

REVOKE ALL ON FUNCTION public.record_cache_invalidation() FROM PUBLIC;

CREATE TRIGGER tenants_invalidate_caches
    AFTER UPDATE OF jwt_secret_sealed, jwt_secret_nonce, jwt_secret_kek_version, jwt_public_keys, jwt_audience, jwt_issuer
        OR DELETE ON public.tenants
    FOR EACH ROW EXECUTE FUNCTION public.record_cache_invalidation('tenant_keys', 'id');

-- Not on last_used_at, which requests touch.
CREATE TRIGGER service_keys_invalidate_caches
    AFTER UPDATE OF revoked_at, scopes, key_hash, tenant_id OR DELETE ON public.service_keys
    FOR EACH ROW EXECUTE FUNCTION public.record_cache_invalidation('service_key', 'tenant_id');

GRANT SELECT ON public.cache_invalidations TO privacy_gateway;
