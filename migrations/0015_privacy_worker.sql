-- 0015 the privacy worker's own role (least privilege): data-subject requests and the retention
-- sweep stop running as the owner. The privacy service now starts every transaction with
-- SET LOCAL ROLE privacy_worker and request.tenant_id, so
--   * on every table with personal data (a policy file with subject:) it may read, anonymise and
--     delete any row — of that tenant only: the RESTRICTIVE tenant_isolation policy binds it too;
--   * it may delete the subject's auth.users row, and read the audit trail (a request runs only
--     when its filing and confirmation entries are there); the keyring stays the login's (the
--     service switches back to the login for the one statement that shreds a key);
--   * it finds runnable requests across tenants only through privacy.runnable_requests(), and the
--     tenant of a download link's export through privacy.export_tenant(): ids and nothing else;
--   * it has no right on tenants' keys, service keys, the audit tables (the audit appender writes
--     as the gateway's login) or any table without personal data, and it cannot log in.
-- The gateway's login and the owner (privacyctl) reach it through SET ROLE only.

DO $privacy_role$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'privacy_worker') THEN
        BEGIN
            CREATE ROLE privacy_worker NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created concurrently by a migration of another database
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles
               WHERE rolname = 'privacy_worker' AND (rolsuper OR rolbypassrls)) THEN
        ALTER ROLE privacy_worker NOSUPERUSER NOBYPASSRLS;
    END IF;
    IF NOT pg_catalog.pg_has_role('privacy_gateway', 'privacy_worker', 'MEMBER') THEN
        BEGIN
            GRANT privacy_worker TO privacy_gateway;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    -- The owner runs privacyctl's requests through the same role.
    IF NOT pg_catalog.pg_has_role(current_user, 'privacy_worker', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT privacy_worker TO %I', current_user);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$privacy_role$;

GRANT USAGE ON SCHEMA public, auth TO privacy_worker;
GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.jwt(), auth.tenant_id() TO privacy_worker;
GRANT SELECT, UPDATE (last_seen_at), DELETE ON auth.users TO privacy_worker;  -- UPDATE: to lock the subject's row (FOR UPDATE)
GRANT SELECT (id) ON public.tenants TO privacy_worker;  -- the retention sweep walks tenants; nothing else of theirs
GRANT SELECT ON public.audit_events TO privacy_worker;

-- Runnable requests of every tenant, ids only, oldest first: the one cross-tenant read the worker
-- needs. It then locks each request under RLS, with that request's tenant set.
CREATE SCHEMA IF NOT EXISTS privacy;
REVOKE ALL ON SCHEMA privacy FROM PUBLIC;
GRANT USAGE ON SCHEMA privacy TO privacy_worker;
CREATE FUNCTION privacy.runnable_requests(kind text, lease_seconds integer, max_rows integer)
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
          AND (d.status = 'pending' OR (d.status = 'processing' AND d.updated_at < now() - make_interval(secs => lease_seconds)))
    ) r
    ORDER BY r.requested_at
    LIMIT least(greatest(max_rows, 1), 100)
$$;
REVOKE ALL ON FUNCTION privacy.runnable_requests(text, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.runnable_requests(text, integer, integer) TO privacy_worker;

-- A download link names an export, not a tenant: whose export it is, so the token is checked under
-- that tenant's RLS. A random uuid answers NULL, exactly as an unknown one.
CREATE FUNCTION privacy.export_tenant(export_id uuid) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.tenant_id FROM public.data_export_requests e WHERE e.id = export_id
$$;
REVOKE ALL ON FUNCTION privacy.export_tenant(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.export_tenant(uuid) TO privacy_worker;

-- Every table with personal data: the implied privacy_worker policy and its grants (as
-- `privacyctl policy sql` prints them from the policy files).
CREATE POLICY privacy_worker ON public.ai_assistant_sessions AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.ai_assistant_sessions TO privacy_worker;
CREATE POLICY privacy_worker ON public.ai_threads AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.ai_threads TO privacy_worker;
CREATE POLICY privacy_worker ON public.analytics AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.analytics TO privacy_worker;
CREATE POLICY privacy_worker ON public.brands AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.brands TO privacy_worker;
CREATE POLICY privacy_worker ON public.builder_sessions AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.builder_sessions TO privacy_worker;
CREATE POLICY privacy_worker ON public.campaign_tasks AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.campaign_tasks TO privacy_worker;
CREATE POLICY privacy_worker ON public.campaigns AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.campaigns TO privacy_worker;
CREATE POLICY privacy_worker ON public.chat_messages AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.chat_messages TO privacy_worker;
CREATE POLICY privacy_worker ON public.chat_sessions AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.chat_sessions TO privacy_worker;
CREATE POLICY privacy_worker ON public.content_calendar AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.content_calendar TO privacy_worker;
CREATE POLICY privacy_worker ON public.content_modifications AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.content_modifications TO privacy_worker;
CREATE POLICY privacy_worker ON public.conversation_messages AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.conversation_messages TO privacy_worker;
CREATE POLICY privacy_worker ON public.conversation_sessions AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.conversation_sessions TO privacy_worker;
CREATE POLICY privacy_worker ON public.data_deletion_requests AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.data_deletion_requests TO privacy_worker;
CREATE POLICY privacy_worker ON public.data_export_requests AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.data_export_requests TO privacy_worker;
CREATE POLICY privacy_worker ON public.ghl_opportunities AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.ghl_opportunities TO privacy_worker;
CREATE POLICY privacy_worker ON public.job_drafts AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.job_drafts TO privacy_worker;
CREATE POLICY privacy_worker ON public.lead_activities AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.lead_activities TO privacy_worker;
CREATE POLICY privacy_worker ON public.leads AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.leads TO privacy_worker;
CREATE POLICY privacy_worker ON public.optimizations AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.optimizations TO privacy_worker;
CREATE POLICY privacy_worker ON public.profiles AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.profiles TO privacy_worker;
CREATE POLICY privacy_worker ON public.projects AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.projects TO privacy_worker;
CREATE POLICY privacy_worker ON public.sitemaps AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.sitemaps TO privacy_worker;
CREATE POLICY privacy_worker ON public.style_customization_history AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.style_customization_history TO privacy_worker;
CREATE POLICY privacy_worker ON public.style_guides AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.style_guides TO privacy_worker;
CREATE POLICY privacy_worker ON public.support_tickets AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.support_tickets TO privacy_worker;
CREATE POLICY privacy_worker ON public.user_preferences AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.user_preferences TO privacy_worker;
CREATE POLICY privacy_worker ON public.user_privacy_settings AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.user_privacy_settings TO privacy_worker;
CREATE POLICY privacy_worker ON public.user_secret_versions AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.user_secret_versions TO privacy_worker;
CREATE POLICY privacy_worker ON public.user_secrets AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.user_secrets TO privacy_worker;
CREATE POLICY privacy_worker ON public.version_history AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.version_history TO privacy_worker;
CREATE POLICY privacy_worker ON public.wireframes AS PERMISSIVE FOR ALL TO privacy_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.wireframes TO privacy_worker;
