-- Processors: the data a tenant's apps hold outside Postgres (OpenAI threads, a CRM, an LLM
-- provider's logs), and the duplicate link between data-subject requests (issue 18).
--
-- 1. An erasure whose database work is done waits in `requires_input` for its processors' signed
--    confirmations (Privacy/Processors.swift), then resumes to its certificate. The one table of
--    moves (Privacy/RequestLifecycle.swift, trigger of 0020) gains: processing → requires_input,
--    requires_input → processing | failed.
-- 2. privacy.processors: declared per tenant; the signing secret only sealed under the tenant's KEK
--    (as tenants' JWT secrets), never in plaintext. privacy.processor_calls: one row per request and
--    processor — attempts, backoff, deadline and the recorded answer.
-- 3. duplicate_of: a request filed while an open one of the same kind for the same subject is
--    younger than PRIVACY_DUPLICATE_WINDOW is recorded, linked to it, and closed (never run twice).

ALTER TABLE public.data_export_requests DROP CONSTRAINT data_export_requests_status_check;
ALTER TABLE public.data_export_requests ADD CONSTRAINT data_export_requests_status_check CHECK (status IN (
    'received', 'identity_verified', 'pending', 'on_hold', 'processing', 'requires_input',
    'completed', 'partially_completed', 'denied', 'canceled', 'failed'));
ALTER TABLE public.data_deletion_requests DROP CONSTRAINT data_deletion_requests_status_check;
ALTER TABLE public.data_deletion_requests ADD CONSTRAINT data_deletion_requests_status_check CHECK (status IN (
    'received', 'identity_verified', 'pending', 'on_hold', 'awaiting_confirmation', 'processing', 'requires_input',
    'completed', 'partially_completed', 'denied', 'canceled', 'failed'));

-- The request a duplicate was linked to, of the same tenant (no foreign key: a table embedded in itself is
-- not served by /rest/v1, and an export request goes with its subject while the link stays a record).
ALTER TABLE public.data_export_requests ADD COLUMN duplicate_of uuid;
ALTER TABLE public.data_deletion_requests ADD COLUMN duplicate_of uuid;

CREATE OR REPLACE FUNCTION privacy.check_request_transition() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    kind text := CASE TG_TABLE_NAME WHEN 'data_export_requests' THEN 'export' ELSE 'deletion' END;
    stop text[] := ARRAY['on_hold', 'denied', 'canceled'];
    allowed text[];
BEGIN
    IF pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'USAGE') THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        allowed := CASE kind WHEN 'export' THEN ARRAY['received', 'pending'] ELSE ARRAY['received', 'awaiting_confirmation'] END;
        IF NEW.status = ANY (allowed) THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'a % request cannot be created as %', kind, NEW.status
            USING ERRCODE = 'check_violation', HINT = 'requests start as ' || array_to_string(allowed, ' or ');
    END IF;
    IF NEW.status IS NOT DISTINCT FROM OLD.status AND NEW.status <> 'processing' THEN
        RETURN NEW;
    END IF;
    allowed := CASE kind || ':' || OLD.status
        WHEN 'export:received' THEN stop || ARRAY['identity_verified', 'pending']
        WHEN 'export:identity_verified' THEN stop || ARRAY['pending']
        WHEN 'export:pending' THEN stop || ARRAY['processing', 'failed']
        WHEN 'export:on_hold' THEN ARRAY['pending', 'denied', 'canceled']
        WHEN 'export:processing' THEN ARRAY['processing', 'completed', 'failed']
        WHEN 'export:failed' THEN ARRAY['pending']
        WHEN 'deletion:received' THEN stop || ARRAY['identity_verified', 'awaiting_confirmation']
        WHEN 'deletion:identity_verified' THEN stop || ARRAY['awaiting_confirmation']
        WHEN 'deletion:awaiting_confirmation' THEN stop || ARRAY['pending']
        WHEN 'deletion:pending' THEN stop || ARRAY['processing', 'failed']
        WHEN 'deletion:on_hold' THEN ARRAY['awaiting_confirmation', 'pending', 'denied', 'canceled']
        WHEN 'deletion:processing' THEN ARRAY['processing', 'requires_input', 'completed', 'partially_completed', 'failed']
        WHEN 'deletion:requires_input' THEN ARRAY['processing', 'failed']
        WHEN 'deletion:failed' THEN ARRAY['pending']
        ELSE ARRAY[]::text[]
    END;
    IF NEW.status = ANY (allowed) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a % request cannot move from % to %', kind, OLD.status, NEW.status
        USING ERRCODE = 'check_violation',
              HINT = CASE WHEN cardinality(allowed) = 0 THEN 'a ' || OLD.status || ' request is closed'
                          ELSE 'from ' || OLD.status || ' it can move to ' || array_to_string(allowed, ', ') END;
END
$$;

CREATE TABLE privacy.processors (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id          uuid        NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    name               text        NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    data_kind          text        NOT NULL CHECK (char_length(data_kind) BETWEEN 1 AND 200),
    webhook_url        text        NOT NULL CHECK (char_length(webhook_url) BETWEEN 8 AND 2048),
    secret_sealed      bytea       NOT NULL,  -- XChaCha20-Poly1305 under the tenant's KEK (Keyring.sealTenantSecret)
    secret_nonce       bytea       NOT NULL,
    secret_kek_version integer     NOT NULL,
    timeout_seconds    integer     NOT NULL CHECK (timeout_seconds BETWEEN 1 AND 2592000),
    erasure_required   boolean     NOT NULL DEFAULT true,
    export_required    boolean     NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

-- One call per request and processor. No foreign key to the processor: one removed later keeps its
-- calls, which its request's certificate names (processor_name, data_kind are copied).
CREATE TABLE privacy.processor_calls (
    tenant_id       uuid        NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    request_kind    text        NOT NULL CHECK (request_kind IN ('export', 'deletion')),
    request_id      uuid        NOT NULL,
    processor_id    uuid        NOT NULL,
    processor_name  text        NOT NULL,
    data_kind       text        NOT NULL,
    required        boolean     NOT NULL,
    user_id         uuid        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    deadline_at     timestamptz NOT NULL,
    delivered_at    timestamptz,
    last_error      text        CHECK (char_length(last_error) <= 200),
    outcome         text        CHECK (outcome IN ('confirmed', 'refused', 'timed_out')),
    answered_at     timestamptz,
    detail          text        CHECK (char_length(detail) <= 500),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, request_id, processor_id),
    CHECK ((outcome IS NULL) = (answered_at IS NULL))
);
CREATE INDEX processor_calls_due ON privacy.processor_calls (next_attempt_at) WHERE outcome IS NULL;

-- The privacy worker reaches only the current tenant's rows (request.tenant_id), through views with
-- a check option, as privacy.tenant_identity_challenges (0023).
CREATE VIEW privacy.tenant_processors WITH (security_barrier) AS
    SELECT id, tenant_id, name, data_kind, webhook_url, secret_sealed, secret_nonce, secret_kek_version, timeout_seconds,
           erasure_required, export_required, created_at
    FROM privacy.processors
    WHERE tenant_id = auth.tenant_id()
    WITH CASCADED CHECK OPTION;
CREATE VIEW privacy.tenant_processor_calls WITH (security_barrier) AS
    SELECT tenant_id, request_kind, request_id, processor_id, processor_name, data_kind, required, user_id, attempts,
           next_attempt_at, deadline_at, delivered_at, last_error, outcome, answered_at, detail, created_at
    FROM privacy.processor_calls
    WHERE tenant_id = auth.tenant_id()
    WITH CASCADED CHECK OPTION;
REVOKE ALL ON privacy.processors, privacy.processor_calls, privacy.tenant_processors, privacy.tenant_processor_calls FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON privacy.tenant_processors, privacy.tenant_processor_calls TO privacy_worker;

-- Calls of every tenant to send (due) or to close (past their deadline unanswered), ids only.
CREATE FUNCTION privacy.due_processor_calls(max_rows integer)
    RETURNS TABLE (tenant_id uuid, request_id uuid, processor_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.tenant_id, c.request_id, c.processor_id FROM privacy.processor_calls c
    WHERE c.outcome IS NULL AND ((c.delivered_at IS NULL AND c.next_attempt_at <= now()) OR c.deadline_at <= now())
    ORDER BY c.next_attempt_at
    LIMIT least(greatest(max_rows, 1), 100)
$$;
REVOKE ALL ON FUNCTION privacy.due_processor_calls(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.due_processor_calls(integer) TO privacy_worker;

-- A callback names a processor, not a tenant: whose processor it is, so its signature is checked
-- with that tenant's sealed secret and the request looked up under that tenant's RLS.
CREATE FUNCTION privacy.processor_tenant(processor uuid) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.tenant_id FROM privacy.processors p WHERE p.id = processor
$$;
REVOKE ALL ON FUNCTION privacy.processor_tenant(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.processor_tenant(uuid) TO privacy_worker;

-- Runnable requests now include erasures waiting in requires_input whose calls are all answered or
-- past their deadline: the worker resumes them to their certificate.
CREATE OR REPLACE FUNCTION privacy.runnable_requests(kind text, lease_seconds integer, max_rows integer)
    RETURNS TABLE (tenant_id uuid, id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.tenant_id, r.id FROM (
        SELECT e.tenant_id, e.id, e.requested_at FROM public.data_export_requests e
        WHERE kind = 'export'
          AND (e.status = 'pending' OR (e.status = 'processing' AND e.updated_at < now() - make_interval(secs => lease_seconds)))
        UNION ALL
        SELECT d.tenant_id, d.id, d.requested_at FROM public.data_deletion_requests d
        WHERE kind = 'deletion'
          AND (d.status = 'pending' OR (d.status = 'processing' AND d.updated_at < now() - make_interval(secs => lease_seconds))
               OR (d.status = 'requires_input' AND NOT EXISTS (
                   SELECT 1 FROM privacy.processor_calls c
                   WHERE c.tenant_id = d.tenant_id AND c.request_id = d.id AND c.outcome IS NULL AND c.deadline_at > now())))
    ) r
    ORDER BY r.requested_at
    LIMIT least(greatest(max_rows, 1), 100)
$$;

-- Request roles read the link as they read the rest of their own requests' status (0011).
GRANT SELECT (duplicate_of) ON public.data_export_requests TO anon, authenticated, service_role;
GRANT SELECT (duplicate_of) ON public.data_deletion_requests TO anon, authenticated, service_role;
