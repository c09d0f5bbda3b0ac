-- 0002 user secrets and GDPR tables (seed 003: "User Management" domain).
--
-- Conventions for every governed table from here on:
--   * tenant_id uuid NOT NULL DEFAULT auth.tenant_id() → public.tenants ON DELETE CASCADE;
--   * subject columns reference auth.users through (tenant_id, user_id) so a row can
--     only name a subject of its own tenant (the seeds' FK to auth.users(id), made
--     tenant-consistent); parent/child FKs are (tenant_id, parent_id) likewise;
--   * RLS on, a RESTRICTIVE policy "tenant_isolation", plus the seed's permissive
--     policies. Owner policies apply to authenticated and to service_role (which here
--     acts for the subject named by the JWT's sub, e.g. for exports and erasure);
--   * grants to anon, authenticated, service_role: RLS decides;
--   * seed TIMESTAMP columns become timestamptz; indexes lead with tenant_id because
--     every query carries tenant_id = auth.tenant_id().

-- Shared trigger function (seed 003 name): keeps updated_at current.
CREATE FUNCTION public.update_updated_at_column() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = public, pg_temp
AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$$;

-- ---------------------------------------------------------------------------
-- user_secrets: one encrypted secret per user per service (seed 003 column names).
-- Ciphertext and nonce are bytea (XChaCha20-Poly1305-IETF, 24-byte nonce, DESIGN §7).
-- version counts writes of this secret (check-and-set, AAD binding); key_version is
-- the version of the subject key that encrypted it. deleted_at = soft delete.
-- ---------------------------------------------------------------------------
CREATE TABLE public.user_secrets (
    id                    uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id             uuid        NOT NULL DEFAULT auth.tenant_id()
                                      REFERENCES public.tenants (id) ON DELETE CASCADE,
    user_id               uuid        NOT NULL,
    service_name          text        NOT NULL CHECK (btrim(service_name) <> '' AND char_length(service_name) <= 255),
    encrypted_value       bytea       NOT NULL CHECK (octet_length(encrypted_value) >= 16), -- ciphertext || 16-byte tag
    initialization_vector bytea       NOT NULL CHECK (octet_length(initialization_vector) = 24),
    key_version           integer     NOT NULL DEFAULT 1 CHECK (key_version >= 1),
    version               integer     NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at            timestamptz,
    CONSTRAINT user_secrets_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT user_secrets_tenant_user_service_key UNIQUE (tenant_id, user_id, service_name)
);
-- The unique index (tenant_id, user_id, service_name) also serves (tenant_id, user_id).
CREATE INDEX user_secrets_tenant_key_version_idx ON public.user_secrets (tenant_id, key_version);

CREATE TRIGGER update_user_secrets_updated_at
    BEFORE UPDATE ON public.user_secrets
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.user_secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.user_secrets AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own secrets" ON public.user_secrets
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Users can insert own secrets" ON public.user_secrets
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own secrets" ON public.user_secrets
    FOR UPDATE TO authenticated, service_role USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can delete own secrets" ON public.user_secrets
    FOR DELETE TO authenticated, service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.user_secrets TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- user_privacy_settings: consents and retention, 1:1 per user (seed 003).
-- ---------------------------------------------------------------------------
CREATE TABLE public.user_privacy_settings (
    id                            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id                     uuid        NOT NULL DEFAULT auth.tenant_id()
                                              REFERENCES public.tenants (id) ON DELETE CASCADE,
    user_id                       uuid        NOT NULL,
    data_processing_consent       boolean     NOT NULL DEFAULT false,
    marketing_consent             boolean     NOT NULL DEFAULT false,
    analytics_consent             boolean     NOT NULL DEFAULT false,
    third_party_consent           boolean     NOT NULL DEFAULT false,
    data_retention_days           integer     NOT NULL DEFAULT 730 CHECK (data_retention_days > 0),
    right_to_be_deleted_requested boolean     NOT NULL DEFAULT false,
    created_at                    timestamptz NOT NULL DEFAULT now(),
    updated_at                    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_privacy_settings_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT user_privacy_settings_tenant_user_key UNIQUE (tenant_id, user_id)
);

CREATE TRIGGER update_user_privacy_settings_updated_at
    BEFORE UPDATE ON public.user_privacy_settings
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.user_privacy_settings ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.user_privacy_settings AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own privacy settings" ON public.user_privacy_settings
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Users can insert own privacy settings" ON public.user_privacy_settings
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own privacy settings" ON public.user_privacy_settings
    FOR UPDATE TO authenticated, service_role USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can delete own privacy settings" ON public.user_privacy_settings
    FOR DELETE TO authenticated, service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.user_privacy_settings TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- Data-subject requests (seed 003 + DESIGN §9 lifecycle).
-- Seed statuses pending → processing → completed are kept; the design's full
-- lifecycle is allowed. due_at = received + one calendar month; one extension of
-- at most two more months, with a reason (extended_due_at ≤ requested_at + 3 months).
-- Users may file and read their own requests; only service_role (acting for the
-- subject) moves them through the workflow.
-- ---------------------------------------------------------------------------
CREATE TABLE public.data_export_requests (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id           uuid        NOT NULL DEFAULT auth.tenant_id()
                                    REFERENCES public.tenants (id) ON DELETE CASCADE,
    user_id             uuid        NOT NULL,
    status              text        NOT NULL DEFAULT 'received' CHECK (status IN (
                            'received', 'identity_verified', 'pending', 'on_hold', 'processing',
                            'completed', 'partially_completed', 'denied', 'canceled', 'failed')),
    requested_at        timestamptz NOT NULL DEFAULT now(),
    identity_verified_at timestamptz,
    due_at              timestamptz NOT NULL DEFAULT (now() + interval '1 month'),
    extended_due_at     timestamptz,
    extension_reason    text,
    extended_at         timestamptz,
    started_at          timestamptz,
    completed_at        timestamptz,
    download_url        text,
    download_expires_at timestamptz,
    download_token_hash bytea       CHECK (octet_length(download_token_hash) = 32), -- keyed hash of the link token
    manifest            jsonb,      -- counts and SHA-256 per file, policy version, generated_at
    status_reason       text,       -- why denied / on hold / failed
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT data_export_requests_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT data_export_requests_extension_check CHECK (
        (extended_due_at IS NULL AND extension_reason IS NULL)
        OR (extended_due_at IS NOT NULL AND btrim(extension_reason) <> ''
            AND extended_due_at > due_at
            AND extended_due_at <= requested_at + interval '3 months'))
);
CREATE INDEX data_export_requests_tenant_user_idx ON public.data_export_requests (tenant_id, user_id, requested_at DESC);
CREATE INDEX data_export_requests_tenant_open_due_idx ON public.data_export_requests (tenant_id, due_at)
    WHERE status NOT IN ('completed', 'partially_completed', 'denied', 'canceled', 'failed');

CREATE TRIGGER update_data_export_requests_updated_at
    BEFORE UPDATE ON public.data_export_requests
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.data_export_requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.data_export_requests AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own export requests" ON public.data_export_requests
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Users can create own export requests" ON public.data_export_requests
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Service role processes export requests" ON public.data_export_requests
    FOR UPDATE TO service_role USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Service role deletes export requests" ON public.data_export_requests
    FOR DELETE TO service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.data_export_requests TO anon, authenticated, service_role;

-- Deletion requests are the proof of erasure and must outlive the subject: user_id
-- deliberately has NO foreign key to auth.users (erasure ends by deleting that row),
-- and there is no DELETE policy (retained; Art. 5(2) accountability).
CREATE TABLE public.data_deletion_requests (
    id                    uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id             uuid        NOT NULL DEFAULT auth.tenant_id()
                                      REFERENCES public.tenants (id) ON DELETE CASCADE,
    user_id               uuid        NOT NULL,
    status                text        NOT NULL DEFAULT 'received' CHECK (status IN (
                              'received', 'identity_verified', 'pending', 'on_hold',
                              'awaiting_confirmation', 'processing',
                              'completed', 'partially_completed', 'denied', 'canceled', 'failed')),
    confirmation_required boolean     NOT NULL DEFAULT true,
    requested_at          timestamptz NOT NULL DEFAULT now(),
    identity_verified_at  timestamptz,
    due_at                timestamptz NOT NULL DEFAULT (now() + interval '1 month'),
    extended_due_at       timestamptz,
    extension_reason      text,
    extended_at           timestamptz,
    plan                  jsonb,       -- dry-run plan: counts and strategy per table
    confirmed_at          timestamptz,
    canceled_at           timestamptz,
    started_at            timestamptz,
    completed_at          timestamptz,
    result                jsonb,       -- rows changed per table, verification outcome
    certificate           jsonb,       -- signed deletion certificate (DESIGN §9)
    certificate_signature bytea,       -- Ed25519 signature over the certificate's canonical bytes
    status_reason         text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT data_deletion_requests_extension_check CHECK (
        (extended_due_at IS NULL AND extension_reason IS NULL)
        OR (extended_due_at IS NOT NULL AND btrim(extension_reason) <> ''
            AND extended_due_at > due_at
            AND extended_due_at <= requested_at + interval '3 months')),
    CONSTRAINT data_deletion_requests_signature_check CHECK (
        certificate_signature IS NULL OR octet_length(certificate_signature) = 64)
);
CREATE INDEX data_deletion_requests_tenant_user_idx ON public.data_deletion_requests (tenant_id, user_id, requested_at DESC);
CREATE INDEX data_deletion_requests_tenant_open_due_idx ON public.data_deletion_requests (tenant_id, due_at)
    WHERE status NOT IN ('completed', 'partially_completed', 'denied', 'canceled', 'failed');

CREATE TRIGGER update_data_deletion_requests_updated_at
    BEFORE UPDATE ON public.data_deletion_requests
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.data_deletion_requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.data_deletion_requests AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own deletion requests" ON public.data_deletion_requests
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Users can create own deletion requests" ON public.data_deletion_requests
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Service role processes deletion requests" ON public.data_deletion_requests
    FOR UPDATE TO service_role USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.data_deletion_requests TO anon, authenticated, service_role;
