-- 0008 audit trail: one hash chain per tenant, its head, signed checkpoints (DESIGN.md §8).
-- The hash of every entry is computed by the gateway (Sources/Audit/ENCODING.md) and
-- only stored here; the database never recomputes it, so an auditor verifies the
-- exported rows without trusting this schema.
--
-- Who may write: the gateway's own login (privacy_gateway) gets INSERT and SELECT on
-- audit_events and audit_checkpoints, directly. Not the request roles: appends are
-- made by the appender, which runs its statements as the session user even inside
-- a request's transaction (it resets the role for its statements and restores it),
-- so anon/authenticated/service_role never need, and never get, any right on the
-- trail — SQL running under a request role can neither read nor forge entries.
-- There is no RLS on these tables for the same reason: the gateway scopes every
-- audit statement by tenant_id itself, as it does for tenants and service_keys.
--
-- Nobody may change history: a trigger refuses UPDATE, DELETE and TRUNCATE on
-- audit_events and audit_checkpoints, for every role including the owner. An owner
-- or superuser can still disable the trigger; that is what signed checkpoints and
-- offline verification are for.

-- ---------------------------------------------------------------------------
-- Entries. tenant_id has no ON DELETE CASCADE: a tenant with an audit history
-- cannot be deleted by accident (the trail is evidence, Art. 5(2)).
-- ---------------------------------------------------------------------------
CREATE TABLE public.audit_events (
    tenant_id  uuid        NOT NULL REFERENCES public.tenants (id),
    seq        bigint      NOT NULL CHECK (seq >= 1),
    at         timestamptz NOT NULL,
    actor      text,
    action     text        NOT NULL CHECK (action ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$'),
    target     text,
    outcome    text        NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
    request_id text,
    ip         inet,
    user_agent text,
    details    jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(details) = 'object'),
    prev_hash  bytea       NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash       bytea       NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (tenant_id, seq)
);
-- Filters of GET /v1/audit/events and the seed views: by action within a tenant, newest first.
CREATE INDEX audit_events_tenant_action_idx ON public.audit_events (tenant_id, action, seq DESC);
CREATE INDEX audit_events_tenant_at_idx ON public.audit_events (tenant_id, at);

-- ---------------------------------------------------------------------------
-- One head per tenant: the last seq and hash. Appenders lock this row
-- (SELECT … FOR UPDATE) to serialise one tenant's chain; tenants never share a lock.
-- seq 0 / 32 zero bytes = empty chain. The head may only move forward, and only to
-- an entry that exists with that hash (checked in the same transaction), so a
-- stray UPDATE cannot point it elsewhere.
-- ---------------------------------------------------------------------------
CREATE TABLE public.audit_heads (
    tenant_id uuid   PRIMARY KEY REFERENCES public.tenants (id),
    seq       bigint NOT NULL CHECK (seq >= 0),
    hash      bytea  NOT NULL CHECK (octet_length(hash) = 32)
);

CREATE FUNCTION public.audit_head_advance() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = public, pg_temp
AS $$
BEGIN
    IF NEW.tenant_id <> OLD.tenant_id OR NEW.seq <= OLD.seq THEN
        RAISE EXCEPTION 'audit head of tenant % may only move forward', OLD.tenant_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.audit_events e
                   WHERE e.tenant_id = NEW.tenant_id AND e.seq = NEW.seq AND e.hash = NEW.hash) THEN
        RAISE EXCEPTION 'audit head of tenant % must point at an existing entry', NEW.tenant_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_heads_advance_only
    BEFORE UPDATE ON public.audit_heads
    FOR EACH ROW EXECUTE FUNCTION public.audit_head_advance();

-- ---------------------------------------------------------------------------
-- Checkpoints: Ed25519 signatures over (tenant, seq, head hash, previous checkpoint,
-- time), see ENCODING.md. The signing key lives outside the database; the public key
-- is stored with each checkpoint and key_id = hex SHA-256 of it, so old checkpoints
-- stay verifiable after a key rotation.
-- ---------------------------------------------------------------------------
CREATE TABLE public.audit_checkpoints (
    tenant_id                uuid        NOT NULL REFERENCES public.tenants (id),
    seq                      bigint      NOT NULL CHECK (seq >= 1),
    head_hash                bytea       NOT NULL CHECK (octet_length(head_hash) = 32),
    previous_checkpoint_hash bytea       NOT NULL CHECK (octet_length(previous_checkpoint_hash) = 32),
    signed_at                timestamptz NOT NULL,
    key_id                   text        NOT NULL CHECK (key_id ~ '^[0-9a-f]{64}$'),
    public_key               bytea       NOT NULL CHECK (octet_length(public_key) = 32),
    signature                bytea       NOT NULL CHECK (octet_length(signature) = 64),
    PRIMARY KEY (tenant_id, seq)
);

-- ---------------------------------------------------------------------------
-- Append-only: refuse UPDATE, DELETE and TRUNCATE (SQLSTATE 42501, like a missing
-- privilege, since it is one by design).
-- ---------------------------------------------------------------------------
CREATE FUNCTION public.audit_refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = public, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '% on %.% is not allowed: the audit trail is append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON public.audit_events
    FOR EACH ROW EXECUTE FUNCTION public.audit_refuse_change();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON public.audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_refuse_change();
CREATE TRIGGER audit_checkpoints_append_only
    BEFORE UPDATE OR DELETE ON public.audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION public.audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate
    BEFORE TRUNCATE ON public.audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_refuse_change();
-- A head row is never deleted either (it would restart the chain at seq 1).
CREATE TRIGGER audit_heads_no_delete
    BEFORE DELETE ON public.audit_heads
    FOR EACH ROW EXECUTE FUNCTION public.audit_refuse_change();
CREATE TRIGGER audit_heads_no_truncate
    BEFORE TRUNCATE ON public.audit_heads
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_refuse_change();

-- ---------------------------------------------------------------------------
-- Seed 003 names, kept as read-only views over the chain. security_invoker: the
-- caller's own rights on audit_events apply (the gateway's), not the owner's.
-- ---------------------------------------------------------------------------
CREATE VIEW public.secret_audit_logs WITH (security_invoker = true) AS
    SELECT tenant_id,
           seq,
           actor                          AS user_id,
           target                         AS service_name,
           substr(action, length('secret.') + 1) AS action,
           outcome,
           (outcome = 'success')          AS success,
           request_id,
           ip                             AS ip_address,
           user_agent,
           details,
           at                             AS created_at
    FROM public.audit_events
    WHERE action LIKE 'secret.%';

CREATE VIEW public.privacy_audit_log WITH (security_invoker = true) AS
    SELECT tenant_id,
           seq,
           actor                          AS user_id,
           substr(action, length('privacy.') + 1) AS event_type,
           target,
           outcome,
           request_id,
           details,
           ip                             AS ip_address,
           user_agent,
           at                             AS "timestamp"
    FROM public.audit_events
    WHERE action LIKE 'privacy.%';

-- ---------------------------------------------------------------------------
-- Grants: the gateway login only (see the header for why not the request roles).
-- Heads need UPDATE to advance (the trigger above limits what an UPDATE may do).
-- ---------------------------------------------------------------------------
GRANT SELECT, INSERT ON public.audit_events TO privacy_gateway;
GRANT SELECT, INSERT ON public.audit_checkpoints TO privacy_gateway;
GRANT SELECT, INSERT, UPDATE ON public.audit_heads TO privacy_gateway;
GRANT SELECT ON public.secret_audit_logs, public.privacy_audit_log TO privacy_gateway;
REVOKE ALL ON public.audit_events, public.audit_heads, public.audit_checkpoints,
              public.secret_audit_logs, public.privacy_audit_log
    FROM PUBLIC, anon, authenticated, service_role;
