-- 0009 key hierarchy and secret versions (DESIGN.md §7).
--
--   root key (outside the database: a 0600 file or a passphrase through Argon2id)
--     └─ wraps the service master (keyed hashes of service keys, audit pseudonyms) and
--        each tenant's KEKs (versioned)
--          └─ each tenant KEK wraps the tenant's subject DEKs (one per user)
--               └─ each subject DEK seals that user's secrets (user_secrets, user_secret_versions)
--
-- Every wrapped key is XChaCha20-Poly1305-IETF with a random 24-byte nonce; its associated
-- data binds it to where it belongs (tenant, user, versions; Sources/Keyring/Wrapping.swift),
-- so a wrapped key copied to another row does not open. The database only ever holds
-- wrapped keys and fingerprints. Only the gateway's login (privacy_gateway) and the owner
-- reach this schema; request roles have no right on it.

CREATE SCHEMA keyring;
REVOKE ALL ON SCHEMA keyring FROM PUBLIC;
GRANT USAGE ON SCHEMA keyring TO privacy_gateway;

-- Root keys, known by a fingerprint only: HMAC-SHA-256 under a subkey of the root key
-- (crypto_kdf id 3, context "rootfpr_"), so a wrong root key is refused at start instead of
-- producing garbage. A root key from a passphrase records its Argon2id salt and limits.
-- A retired root key (after `privacyctl keys rotate --root`) is refused.
CREATE TABLE keyring.root_keys (
    version       integer     PRIMARY KEY CHECK (version >= 1),
    fingerprint   bytea       NOT NULL UNIQUE CHECK (octet_length(fingerprint) = 32),
    kdf_salt      bytea       CHECK (octet_length(kdf_salt) = 16),
    kdf_ops_limit bigint      CHECK (kdf_ops_limit > 0),
    kdf_mem_limit bigint      CHECK (kdf_mem_limit > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    retired_at    timestamptz,
    CONSTRAINT root_keys_kdf_check CHECK (
        (kdf_salt IS NULL) = (kdf_ops_limit IS NULL) AND (kdf_salt IS NULL) = (kdf_mem_limit IS NULL))
);

-- The service master: one random key, wrapped by the current root key, from which keys
-- that must survive root rotation are derived (service-key hashes, audit pseudonyms).
-- A database that predates the keyring adopts its root key as the service master, so
-- keys and pseudonyms made before stay valid.
CREATE TABLE keyring.service_master (
    id           integer     PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    root_version integer     NOT NULL REFERENCES keyring.root_keys (version),
    nonce        bytea       NOT NULL CHECK (octet_length(nonce) = 24),
    wrapped_key  bytea       NOT NULL CHECK (octet_length(wrapped_key) = 48),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Tenant KEKs. The highest version that is not retired is the current one; rotation adds a
-- version, rewraps the DEKs, then retires versions nothing refers to.
CREATE TABLE keyring.tenant_keys (
    tenant_id    uuid        NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    version      integer     NOT NULL CHECK (version >= 1),
    root_version integer     NOT NULL REFERENCES keyring.root_keys (version),
    nonce        bytea       NOT NULL CHECK (octet_length(nonce) = 24),
    wrapped_key  bytea       NOT NULL CHECK (octet_length(wrapped_key) = 48),
    created_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz,
    PRIMARY KEY (tenant_id, version)
);
CREATE INDEX tenant_keys_root_version_idx ON keyring.tenant_keys (root_version);

-- Subject DEKs, one per user per tenant. No foreign key to auth.users: the row must
-- outlive the subject's erasure as proof that the key was destroyed (crypto-shredding
-- sets wrapped_key and nonce to NULL and records destroyed_at).
CREATE TABLE keyring.subject_keys (
    tenant_id    uuid        NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    user_id      uuid        NOT NULL,
    kek_version  integer     NOT NULL,
    nonce        bytea       CHECK (octet_length(nonce) = 24),
    wrapped_key  bytea       CHECK (octet_length(wrapped_key) = 48),
    created_at   timestamptz NOT NULL DEFAULT now(),
    rewrapped_at timestamptz,
    destroyed_at timestamptz,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, kek_version) REFERENCES keyring.tenant_keys (tenant_id, version),
    CONSTRAINT subject_keys_destroyed_check CHECK (
        (destroyed_at IS NULL AND nonce IS NOT NULL AND wrapped_key IS NOT NULL)
        OR (destroyed_at IS NOT NULL AND nonce IS NULL AND wrapped_key IS NULL))
);
-- Rotation finds the DEKs still under an old KEK version in batches.
CREATE INDEX subject_keys_tenant_kek_version_idx ON keyring.subject_keys (tenant_id, kek_version);

GRANT SELECT, INSERT, UPDATE ON keyring.root_keys, keyring.service_master, keyring.tenant_keys, keyring.subject_keys
    TO privacy_gateway;

-- Tenants' HS256 secrets, sealed under the tenant's KEK (associated data: tenant, KEK
-- version). The plaintext column of 0001 is emptied by `privacyctl tenant set-jwt` and
-- `privacyctl keys rotate`, and only read while a tenant still has one.
ALTER TABLE public.tenants
    ADD COLUMN jwt_secret_sealed      bytea   CHECK (octet_length(jwt_secret_sealed) > 16),
    ADD COLUMN jwt_secret_nonce       bytea   CHECK (octet_length(jwt_secret_nonce) = 24),
    ADD COLUMN jwt_secret_kek_version integer,
    ADD CONSTRAINT tenants_jwt_secret_sealed_complete CHECK (
        (jwt_secret_sealed IS NULL) = (jwt_secret_nonce IS NULL)
        AND (jwt_secret_sealed IS NULL) = (jwt_secret_kek_version IS NULL)),
    ADD CONSTRAINT tenants_jwt_secret_kek_fk FOREIGN KEY (id, jwt_secret_kek_version)
        REFERENCES keyring.tenant_keys (tenant_id, version);
GRANT UPDATE (jwt_secret, jwt_secret_sealed, jwt_secret_nonce, jwt_secret_kek_version) ON public.tenants TO privacy_gateway;

-- ---------------------------------------------------------------------------
-- user_secrets: when the value was last read; the secret store keeps it current.
-- key_version is the generation of the subject DEK that sealed the value (always 1
-- until DEKs themselves are replaced; KEK rotation only rewraps them).
-- ---------------------------------------------------------------------------
ALTER TABLE public.user_secrets ADD COLUMN last_used_at timestamptz;
-- Recording a read is not a change of the secret: updated_at moves only when something else does.
DROP TRIGGER update_user_secrets_updated_at ON public.user_secrets;
CREATE TRIGGER update_user_secrets_updated_at
    BEFORE UPDATE ON public.user_secrets
    FOR EACH ROW
    WHEN ((OLD.encrypted_value, OLD.initialization_vector, OLD.key_version, OLD.version, OLD.deleted_at, OLD.service_name)
          IS DISTINCT FROM (NEW.encrypted_value, NEW.initialization_vector, NEW.key_version, NEW.version, NEW.deleted_at, NEW.service_name))
    EXECUTE FUNCTION public.update_updated_at_column();

-- ---------------------------------------------------------------------------
-- user_secret_versions: past values of a secret, kept up to a configured count.
-- A row is the value exactly as it was sealed (same secret id and version in its
-- associated data), so it opens with the subject DEK like the current one.
-- ---------------------------------------------------------------------------
CREATE TABLE public.user_secret_versions (
    tenant_id             uuid        NOT NULL DEFAULT auth.tenant_id()
                                      REFERENCES public.tenants (id) ON DELETE CASCADE,
    secret_id             uuid        NOT NULL,
    user_id               uuid        NOT NULL,
    version               integer     NOT NULL CHECK (version >= 1),
    encrypted_value       bytea       NOT NULL CHECK (octet_length(encrypted_value) >= 16),
    initialization_vector bytea       NOT NULL CHECK (octet_length(initialization_vector) = 24),
    key_version           integer     NOT NULL CHECK (key_version >= 1),
    created_at            timestamptz NOT NULL,
    superseded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, secret_id, version),
    CONSTRAINT user_secret_versions_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE
);
ALTER TABLE public.user_secrets ADD CONSTRAINT user_secrets_tenant_id_id_key UNIQUE (tenant_id, id);
ALTER TABLE public.user_secret_versions ADD CONSTRAINT user_secret_versions_secret_fk
    FOREIGN KEY (tenant_id, secret_id) REFERENCES public.user_secrets (tenant_id, id) ON DELETE CASCADE;
CREATE INDEX user_secret_versions_tenant_user_idx ON public.user_secret_versions (tenant_id, user_id);

ALTER TABLE public.user_secret_versions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.user_secret_versions AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own secret versions" ON public.user_secret_versions
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Users can insert own secret versions" ON public.user_secret_versions
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can delete own secret versions" ON public.user_secret_versions
    FOR DELETE TO authenticated, service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, DELETE ON public.user_secret_versions TO anon, authenticated, service_role;
