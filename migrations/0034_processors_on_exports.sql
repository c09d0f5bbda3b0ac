-- Processors on exports (issue 18, item 3): an export calls each processor declared
-- `export_required` as an erasure calls them all, with the same signed calls, retries and callback
-- route (Privacy/Processors.swift), waiting in `requires_input`; the archive lists each processor
-- with its outcome, and the export ends `partially_completed` when one did not confirm.
--
-- 1. The one table of moves (Privacy/RequestLifecycle.swift, trigger of 0020/0026) gains for exports:
--    processing → requires_input | partially_completed, requires_input → processing | failed.
-- 2. privacy.runnable_requests resumes an export waiting in requires_input once its calls are all
--    answered or past their deadline, as it does erasures.
-- 3. processor_calls.reference: what a processor may return with its answer (an opaque reference or
--    an https link to the data it holds), recorded and listed, never fetched by the gateway.

ALTER TABLE privacy.processor_calls ADD COLUMN reference text CHECK (char_length(reference) <= 500);

CREATE OR REPLACE VIEW privacy.tenant_processor_calls WITH (security_barrier) AS
    SELECT tenant_id, request_kind, request_id, processor_id, processor_name, data_kind, required, user_id, attempts,
           next_attempt_at, deadline_at, delivered_at, last_error, outcome, answered_at, detail, created_at, reference
    FROM privacy.processor_calls
    WHERE tenant_id = auth.tenant_id()
    WITH CASCADED CHECK OPTION;

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
        WHEN 'export:processing' THEN ARRAY['processing', 'requires_input', 'completed', 'partially_completed', 'failed']
        WHEN 'export:requires_input' THEN ARRAY['processing', 'failed']
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

CREATE OR REPLACE FUNCTION privacy.runnable_requests(kind text, lease_seconds integer, max_rows integer)
    RETURNS TABLE (tenant_id uuid, id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.tenant_id, r.id FROM (
        SELECT e.tenant_id, e.id, e.requested_at FROM public.data_export_requests e
        WHERE kind = 'export'
          AND (e.status = 'pending' OR (e.status = 'processing' AND e.updated_at < now() - make_interval(secs => lease_seconds))
               OR (e.status = 'requires_input' AND NOT EXISTS (
                   SELECT 1 FROM privacy.processor_calls c
                   WHERE c.tenant_id = e.tenant_id AND c.request_id = e.id AND c.outcome IS NULL AND c.deadline_at > now())))
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
