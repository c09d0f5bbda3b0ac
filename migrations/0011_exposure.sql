-- 0011 exposure: what the request roles may reach is declared in the policy files (rest:,
-- rest_hidden:, managed_by:) and granted here exactly, default-deny (`privacyctl policy sql`
-- prints the same grants; `privacyctl policy check` and the side-door test compare them).
--
-- Before this migration every governed table granted SELECT, INSERT, UPDATE, DELETE to every
-- request role, so a `data:write` key could write the privacy workflow's rows (and have a person
-- erased) or read and roll back sealed secrets through /rest/v1. Now:
--   * user_secrets, user_secret_versions: no request role has any right. /v1/secrets runs as the
--     new NOLOGIN role gateway_secrets (reached by the gateway's login only through SET LOCAL
--     ROLE), whose RLS policies are the owner-only ones the request roles had;
--   * data_export_requests, data_deletion_requests, user_privacy_settings: request roles may
--     SELECT their own rows (minus the columns the files hide: plans, results, certificates,
--     download links); every write goes through the privacy service;
--   * the seeds' views, which no route serves, grant nothing.

DO $secrets_role$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'gateway_secrets') THEN
        BEGIN
            CREATE ROLE gateway_secrets NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created concurrently by a migration of another database
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles
               WHERE rolname = 'gateway_secrets' AND (rolsuper OR rolbypassrls)) THEN
        ALTER ROLE gateway_secrets NOSUPERUSER NOBYPASSRLS;
    END IF;
    IF NOT pg_catalog.pg_has_role('privacy_gateway', 'gateway_secrets', 'MEMBER') THEN
        BEGIN
            GRANT gateway_secrets TO privacy_gateway;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$secrets_role$;

GRANT USAGE ON SCHEMA public, auth TO gateway_secrets;
GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.jwt(), auth.tenant_id() TO gateway_secrets;

-- Sealed secrets: the owner-only policies now bind the secrets role, not the request roles.
ALTER POLICY "Users can view own secrets" ON public.user_secrets TO gateway_secrets;
ALTER POLICY "Users can insert own secrets" ON public.user_secrets TO gateway_secrets;
ALTER POLICY "Users can update own secrets" ON public.user_secrets TO gateway_secrets;
ALTER POLICY "Users can delete own secrets" ON public.user_secrets TO gateway_secrets;
ALTER POLICY "Users can view own secret versions" ON public.user_secret_versions TO gateway_secrets;
ALTER POLICY "Users can insert own secret versions" ON public.user_secret_versions TO gateway_secrets;
ALTER POLICY "Users can delete own secret versions" ON public.user_secret_versions TO gateway_secrets;

-- Privacy workflow and consents: written only by the privacy service (the owner today).
DROP POLICY "Users can create own export requests" ON public.data_export_requests;
DROP POLICY "Service role processes export requests" ON public.data_export_requests;
DROP POLICY "Service role deletes export requests" ON public.data_export_requests;
DROP POLICY "Users can create own deletion requests" ON public.data_deletion_requests;
DROP POLICY "Service role processes deletion requests" ON public.data_deletion_requests;
DROP POLICY "Users can insert own privacy settings" ON public.user_privacy_settings;
DROP POLICY "Users can update own privacy settings" ON public.user_privacy_settings;
DROP POLICY "Users can delete own privacy settings" ON public.user_privacy_settings;

-- Views of seed 004: no route serves them yet; exposing one is a deliberate, declared change.
REVOKE ALL ON public.provider_usage_stats, public.daily_message_volume FROM anon, authenticated, service_role;

-- Grants per governed table, as the policy files declare them.
REVOKE ALL ON public.ai_assistant_sessions FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.ai_assistant_sessions TO anon, authenticated, service_role;
GRANT DELETE ON public.ai_assistant_sessions TO anon, authenticated, service_role;

REVOKE ALL ON public.ai_model_configs FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.ai_model_configs TO anon, authenticated, service_role;
GRANT DELETE ON public.ai_model_configs TO anon, authenticated, service_role;

REVOKE ALL ON public.ai_threads FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.ai_threads TO anon, authenticated, service_role;
GRANT DELETE ON public.ai_threads TO anon, authenticated, service_role;

REVOKE ALL ON public.analytics FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.analytics TO anon, authenticated, service_role;
GRANT DELETE ON public.analytics TO anon, authenticated, service_role;

REVOKE ALL ON public.brands FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.brands TO anon, authenticated, service_role;
GRANT DELETE ON public.brands TO anon, authenticated, service_role;

REVOKE ALL ON public.builder_sessions FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.builder_sessions TO anon, authenticated, service_role;
GRANT DELETE ON public.builder_sessions TO anon, authenticated, service_role;

REVOKE ALL ON public.campaign_tasks FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.campaign_tasks TO anon, authenticated, service_role;
GRANT DELETE ON public.campaign_tasks TO anon, authenticated, service_role;

REVOKE ALL ON public.campaigns FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.campaigns TO anon, authenticated, service_role;
GRANT DELETE ON public.campaigns TO anon, authenticated, service_role;

REVOKE ALL ON public.chat_messages FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.chat_messages TO anon, authenticated, service_role;
GRANT DELETE ON public.chat_messages TO anon, authenticated, service_role;

REVOKE ALL ON public.chat_sessions FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.chat_sessions TO anon, authenticated, service_role;
GRANT DELETE ON public.chat_sessions TO anon, authenticated, service_role;

REVOKE ALL ON public.content_calendar FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.content_calendar TO anon, authenticated, service_role;
GRANT DELETE ON public.content_calendar TO anon, authenticated, service_role;

REVOKE ALL ON public.content_modifications FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.content_modifications TO anon, authenticated, service_role;
GRANT DELETE ON public.content_modifications TO anon, authenticated, service_role;

REVOKE ALL ON public.conversation_messages FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.conversation_messages TO anon, authenticated, service_role;
GRANT DELETE ON public.conversation_messages TO anon, authenticated, service_role;

REVOKE ALL ON public.conversation_sessions FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.conversation_sessions TO anon, authenticated, service_role;
GRANT DELETE ON public.conversation_sessions TO anon, authenticated, service_role;

REVOKE ALL ON public.data_deletion_requests FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT (id, tenant_id, user_id, status, confirmation_required, requested_at, identity_verified_at, due_at, extended_due_at, extension_reason, extended_at, confirmed_at, canceled_at, started_at, completed_at, status_reason, created_at, updated_at) ON public.data_deletion_requests TO anon, authenticated, service_role;

REVOKE ALL ON public.data_export_requests FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT (id, tenant_id, user_id, status, requested_at, identity_verified_at, due_at, extended_due_at, extension_reason, extended_at, started_at, completed_at, download_expires_at, status_reason, created_at, updated_at) ON public.data_export_requests TO anon, authenticated, service_role;

REVOKE ALL ON public.ghl_opportunities FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.ghl_opportunities TO anon, authenticated, service_role;
GRANT DELETE ON public.ghl_opportunities TO anon, authenticated, service_role;

REVOKE ALL ON public.job_drafts FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.job_drafts TO anon, authenticated, service_role;
GRANT DELETE ON public.job_drafts TO anon, authenticated, service_role;

REVOKE ALL ON public.lead_activities FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.lead_activities TO anon, authenticated, service_role;
GRANT DELETE ON public.lead_activities TO anon, authenticated, service_role;

REVOKE ALL ON public.leads FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.leads TO anon, authenticated, service_role;
GRANT DELETE ON public.leads TO anon, authenticated, service_role;

REVOKE ALL ON public.optimizations FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.optimizations TO anon, authenticated, service_role;
GRANT DELETE ON public.optimizations TO anon, authenticated, service_role;

REVOKE ALL ON public.profiles FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.profiles TO anon, authenticated, service_role;
GRANT DELETE ON public.profiles TO anon, authenticated, service_role;

REVOKE ALL ON public.projects FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.projects TO anon, authenticated, service_role;
GRANT DELETE ON public.projects TO anon, authenticated, service_role;

REVOKE ALL ON public.sitemaps FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.sitemaps TO anon, authenticated, service_role;
GRANT DELETE ON public.sitemaps TO anon, authenticated, service_role;

REVOKE ALL ON public.style_customization_history FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.style_customization_history TO anon, authenticated, service_role;
GRANT DELETE ON public.style_customization_history TO anon, authenticated, service_role;

REVOKE ALL ON public.style_guides FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.style_guides TO anon, authenticated, service_role;
GRANT DELETE ON public.style_guides TO anon, authenticated, service_role;

REVOKE ALL ON public.support_tickets FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.support_tickets TO anon, authenticated, service_role;
GRANT DELETE ON public.support_tickets TO anon, authenticated, service_role;

REVOKE ALL ON public.user_preferences FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.user_preferences TO anon, authenticated, service_role;
GRANT DELETE ON public.user_preferences TO anon, authenticated, service_role;

REVOKE ALL ON public.user_privacy_settings FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT ON public.user_privacy_settings TO anon, authenticated, service_role;

REVOKE ALL ON public.user_secret_versions FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.user_secret_versions TO gateway_secrets;

REVOKE ALL ON public.user_secrets FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.user_secrets TO gateway_secrets;

REVOKE ALL ON public.version_history FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.version_history TO anon, authenticated, service_role;
GRANT DELETE ON public.version_history TO anon, authenticated, service_role;

REVOKE ALL ON public.wireframes FROM anon, authenticated, service_role, gateway_secrets;
GRANT SELECT, INSERT, UPDATE ON public.wireframes TO anon, authenticated, service_role;
GRANT DELETE ON public.wireframes TO anon, authenticated, service_role;
