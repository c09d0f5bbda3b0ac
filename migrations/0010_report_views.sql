-- 0010 report views (issue #8: auditor reports).
--
-- An auditor's report covers a whole tenant: every data-subject request (including those
-- of erased subjects, whose auth.users row is gone), the secret inventory's metadata and the
-- consent flags. The request roles only ever see one subject's rows (auth.uid() = user_id),
-- and the gateway's login has no grants on governed tables, so `GET /v1/audit/report` reads
-- these narrow views instead. They live outside the governed schema (no policy files, no
-- drift), are owned by the migration owner (so the governed tables' RLS does not apply to
-- the view's reads) and are granted to the gateway's login only, which filters by the
-- authenticated tenant exactly as it does for public.audit_events.
--
-- The views expose no ciphertext, no user ids and no download links: only what the
-- report shows (states, timestamps, extension reasons, deletion certificates, service names,
-- key versions, consent flags).

CREATE SCHEMA reports;
REVOKE ALL ON SCHEMA reports FROM PUBLIC;
GRANT USAGE ON SCHEMA reports TO privacy_gateway;

CREATE VIEW reports.data_subject_requests AS
    SELECT 'export'::text AS kind, id, tenant_id, status, requested_at, due_at, extended_due_at,
           extension_reason, extended_at, completed_at, NULL::jsonb AS certificate, false AS certificate_signed
    FROM public.data_export_requests
    UNION ALL
    SELECT 'deletion'::text, id, tenant_id, status, requested_at, due_at, extended_due_at,
           extension_reason, extended_at, completed_at, certificate, certificate_signature IS NOT NULL
    FROM public.data_deletion_requests;

CREATE VIEW reports.secret_inventory AS
    SELECT tenant_id, id, service_name, key_version, created_at, updated_at, last_used_at, deleted_at
    FROM public.user_secrets;

CREATE VIEW reports.consent_settings AS
    SELECT tenant_id, data_processing_consent, marketing_consent, analytics_consent, third_party_consent
    FROM public.user_privacy_settings;

REVOKE ALL ON reports.data_subject_requests, reports.secret_inventory, reports.consent_settings FROM PUBLIC;
GRANT SELECT ON reports.data_subject_requests, reports.secret_inventory, reports.consent_settings TO privacy_gateway;
