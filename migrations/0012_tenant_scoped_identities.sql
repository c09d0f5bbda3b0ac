-- 0012 tenant-scoped identities and in-transaction write safeguards (issue 12, items 5 and 6).
--
-- 1. auth.users is keyed by (tenant_id, id): the same uuid in two tenants is two data
--    subjects. Every foreign key into auth.users already names (tenant_id, id); they are
--    dropped and re-created around the key change (they depend on the unique index that the
--    new primary key replaces). A foreign key naming auth.users (id) alone could not be
--    re-created and fails this migration: fail closed.
-- 2. public.profiles (id = auth.users.id) is keyed by (tenant_id, id) for the same reason.
-- 3. analytics, job_drafts and ghl_opportunities drew their ids from one sequence per table,
--    shared by every tenant, and accepted explicit ids: one tenant could insert ids ahead of
--    the sequence so that another tenant's next inserts failed. Their ids are now GENERATED
--    ALWAYS (an explicit id is refused) and each sequence is moved past the ids in use.
-- 4. auth.check_affected: raises inside a write statement when the number of rows it
--    affected is outside the bounds the request asked for (singular Accept, Prefer:
--    max-affected), so the write is rolled back before anything is committed.

-- ---------------------------------------------------------------------------
-- 1. auth.users: primary key (tenant_id, id)
-- ---------------------------------------------------------------------------
DO $users_key$
DECLARE
    fk record;
    recreate text[] := ARRAY[]::text[];
    statement text;
BEGIN
    FOR fk IN
        SELECT c.conrelid::regclass AS owner, c.conname, pg_catalog.pg_get_constraintdef(c.oid) AS definition
        FROM pg_catalog.pg_constraint c
        WHERE c.contype = 'f' AND c.confrelid = 'auth.users'::regclass
        ORDER BY c.conrelid::regclass::text, c.conname
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.owner, fk.conname);
        recreate := recreate || format('ALTER TABLE %s ADD CONSTRAINT %I %s', fk.owner, fk.conname, fk.definition);
    END LOOP;

    ALTER TABLE auth.users
        DROP CONSTRAINT users_pkey,
        DROP CONSTRAINT users_tenant_id_id_key,
        ADD CONSTRAINT users_pkey PRIMARY KEY (tenant_id, id);

    FOREACH statement IN ARRAY recreate LOOP
        EXECUTE statement;
    END LOOP;
END
$users_key$;

-- ---------------------------------------------------------------------------
-- 2. profiles: primary key (tenant_id, id)
-- ---------------------------------------------------------------------------
ALTER TABLE public.profiles
    DROP CONSTRAINT profiles_pkey,
    DROP CONSTRAINT profiles_tenant_id_id_key,
    ADD CONSTRAINT profiles_pkey PRIMARY KEY (tenant_id, id);

-- ---------------------------------------------------------------------------
-- 3. Identity ids no tenant can choose
-- ---------------------------------------------------------------------------
ALTER TABLE public.analytics ALTER COLUMN id SET GENERATED ALWAYS;
ALTER TABLE public.job_drafts ALTER COLUMN id SET GENERATED ALWAYS;
ALTER TABLE public.ghl_opportunities ALTER COLUMN id SET GENERATED ALWAYS;

-- Ids squatted before this migration stay where they are; each sequence continues after them.
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('public.analytics', 'id'),
                         coalesce((SELECT max(id) FROM public.analytics), 0) + 1, false);
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('public.job_drafts', 'id'),
                         coalesce((SELECT max(id) FROM public.job_drafts), 0) + 1, false);
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('public.ghl_opportunities', 'id'),
                         coalesce((SELECT max(id) FROM public.ghl_opportunities), 0) + 1, false);

-- ---------------------------------------------------------------------------
-- 4. Write safeguards
-- ---------------------------------------------------------------------------
-- Returns `affected` when it lies within [lowest, highest] (a NULL bound is no bound);
-- otherwise raises SQLSTATE PGW24 with the count as DETAIL, which aborts the statement and
-- with it the request's transaction. The REST planner wraps a write's row count in it.
CREATE FUNCTION auth.check_affected(affected bigint, lowest bigint, highest bigint) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog
AS $$
BEGIN
    IF affected < lowest OR affected > highest THEN
        RAISE EXCEPTION USING
            ERRCODE = 'PGW24',
            MESSAGE = 'the statement affected a number of rows outside the requested bounds',
            DETAIL = affected::text;
    END IF;
    RETURN affected;
END
$$;
REVOKE ALL ON FUNCTION auth.check_affected(bigint, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.check_affected(bigint, bigint, bigint) TO anon, authenticated, service_role;
