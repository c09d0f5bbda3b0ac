-- 0013 the report verifies deletion certificates' signatures (issue 12, item 3).
--
-- reports.data_subject_requests (0010) exposed only `certificate_signature IS NOT NULL`, so the
-- report could do no better than count a non-null column as "signed". The view now also carries
-- the stored signature itself (64 bytes, public, nothing secret) for the report to check with
-- the configured Ed25519 public key. The view keeps its columns, order and grants; the new
-- column comes last.

CREATE OR REPLACE VIEW reports.data_subject_requests AS
    SELECT 'export'::text AS kind, id, tenant_id, status, requested_at, due_at, extended_due_at,
           extension_reason, extended_at, completed_at, NULL::jsonb AS certificate, false AS certificate_signed,
           NULL::bytea AS certificate_signature
    FROM public.data_export_requests
    UNION ALL
    SELECT 'deletion'::text, id, tenant_id, status, requested_at, due_at, extended_due_at,
           extension_reason, extended_at, completed_at, certificate, certificate_signature IS NOT NULL,
           certificate_signature
    FROM public.data_deletion_requests;
