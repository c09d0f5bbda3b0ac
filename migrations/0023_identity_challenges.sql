-- One-time codes that verify the identity of a subject who files a request themselves without a
-- fresh sign-in (Privacy/IdentityVerification.swift). Only a keyed hash of each code is stored:
-- HMAC-SHA-256 under the service's token key of the tenant, request and code, so this table (a
-- dump, a backup) does not give the code away, and a six-digit code cannot be brute-forced
-- offline without the key. Attempts are counted across every code of the request. A row lives
-- while its request waits for the code: it goes when the code is entered, burned or expired.
CREATE TABLE privacy.identity_challenges (
    tenant_id    uuid        NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    request_kind text        NOT NULL CHECK (request_kind IN ('export', 'deletion')),
    request_id   uuid        NOT NULL,
    user_id      uuid        NOT NULL,
    code_hash    bytea       NOT NULL CHECK (octet_length(code_hash) = 32),
    expires_at   timestamptz NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    issued       integer     NOT NULL DEFAULT 1 CHECK (issued >= 1),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, request_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX identity_challenges_expiry ON privacy.identity_challenges (expires_at);

-- The privacy worker reaches only the current tenant's challenges (request.tenant_id, as under
-- every request table's tenant policy), through this view: it has no right on the table itself,
-- and the check option refuses a row written for another tenant. (A view rather than a row
-- policy: policies belong to governed tables, and /ready reports any other as drift.)
CREATE VIEW privacy.tenant_identity_challenges WITH (security_barrier) AS
    SELECT tenant_id, request_kind, request_id, user_id, code_hash, expires_at, attempts, issued, created_at
    FROM privacy.identity_challenges
    WHERE tenant_id = auth.tenant_id()
    WITH CASCADED CHECK OPTION;
REVOKE ALL ON privacy.identity_challenges FROM PUBLIC;
REVOKE ALL ON privacy.tenant_identity_challenges FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON privacy.tenant_identity_challenges TO privacy_worker;

-- Open requests of every tenant still waiting for their subject's identity, ids only (as
-- privacy.runnable_requests): the worker then denies each expired one under its own tenant's RLS.
CREATE FUNCTION privacy.unverified_requests(max_rows integer)
    RETURNS TABLE (tenant_id uuid, kind text, id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.tenant_id, c.request_kind, c.request_id FROM privacy.identity_challenges c
    WHERE c.expires_at < now()
    ORDER BY c.expires_at
    LIMIT least(greatest(max_rows, 1), 100)
$$;
REVOKE ALL ON FUNCTION privacy.unverified_requests(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.unverified_requests(integer) TO privacy_worker;
