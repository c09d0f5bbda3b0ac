-- Data-subject requests move only as Privacy's RequestLifecycle allows (one table of moves, in
-- Sources/Privacy/RequestLifecycle.swift; RequestLifecycleTests walks every pair of statuses against
-- this trigger). Any other status change, or a request created in another status, is refused for
-- every role but the tables' owner (repairs, migrations): the privacy worker, the gateway's login
-- and the request roles alike.

CREATE FUNCTION privacy.check_request_transition() RETURNS trigger
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
        WHEN 'deletion:processing' THEN ARRAY['processing', 'completed', 'partially_completed', 'failed']
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

CREATE TRIGGER data_export_requests_transition
    BEFORE INSERT OR UPDATE OF status ON public.data_export_requests
    FOR EACH ROW EXECUTE FUNCTION privacy.check_request_transition();
CREATE TRIGGER data_deletion_requests_transition
    BEFORE INSERT OR UPDATE OF status ON public.data_deletion_requests
    FOR EACH ROW EXECUTE FUNCTION privacy.check_request_transition();
