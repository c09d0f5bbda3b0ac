-- 0028 audit proofs in one small read: store the Merkle tree's nodes at every 4th level instead of
-- every 8th (Sources/Audit/AuditTree.swift).
--
-- With every 8th level stored, an inclusion proof at 1,000,000 entries folded ~525 rows (up to 128
-- entry hashes or level-8 nodes per proof hash) read in ~20 statements: 2.48 ms median
-- (benchmarks/audit-verify). With every 4th level, each proof hash is at most 8 rows of the level
-- below it (~75 rows for the whole proof, read by one statement), while appends write one more
-- node row per 16 entries.
--
-- Nothing is rewritten: the nodes already stored stay as they are; this adds the missing levels
-- (4, 12, 20, …) of every tenant's tree up to its tree_size, each from the 16 nodes (or entry
-- hashes) of the stored level 4 below it. Idempotent (ON CONFLICT DO NOTHING). Entries appended
-- by a gateway that predates this migration after it ran lack these levels; proofs then fold
-- them from the level below (slower, still correct).

SET LOCAL client_min_messages = warning;  -- no NOTICE for the constraints that are not there

ALTER TABLE public.audit_tree_nodes DROP CONSTRAINT IF EXISTS audit_tree_nodes_level_check;
ALTER TABLE public.audit_tree_nodes DROP CONSTRAINT IF EXISTS audit_tree_nodes_level_stride;
ALTER TABLE public.audit_tree_nodes ADD CONSTRAINT audit_tree_nodes_level_stride CHECK (level > 0 AND level % 4 = 0);

-- The RFC 9162 hash of a complete subtree from its 2^k hashes of one level (in order):
-- node = SHA-256(0x01 ‖ left ‖ right), pairwise, up to the root.
CREATE OR REPLACE FUNCTION pg_temp.audit_fold(hashes bytea[]) RETURNS bytea
    LANGUAGE plpgsql IMMUTABLE STRICT
AS $$
DECLARE
    hs bytea[] := hashes;
    nxt bytea[];
BEGIN
    WHILE cardinality(hs) > 1 LOOP
        nxt := '{}';
        FOR i IN 1 .. cardinality(hs) BY 2 LOOP
            nxt := nxt || sha256('\x01'::bytea || hs[i] || hs[i + 1]);
        END LOOP;
        hs := nxt;
    END LOOP;
    RETURN hs[1];
END;
$$;

DO $$
DECLARE
    target int := 4;
BEGIN
    -- Level 4 from the leaves, SHA-256(0x00 ‖ entry hash), of complete groups of 16 entries.
    INSERT INTO public.audit_tree_nodes (tenant_id, level, idx, hash)
    SELECT e.tenant_id, 4, (e.seq - 1) / 16, pg_temp.audit_fold(array_agg(sha256('\x00'::bytea || e.hash) ORDER BY e.seq))
    FROM public.audit_events e JOIN public.audit_heads h ON h.tenant_id = e.tenant_id
    WHERE e.seq <= (h.tree_size / 16) * 16
    GROUP BY e.tenant_id, (e.seq - 1) / 16
    HAVING count(*) = 16
    ON CONFLICT DO NOTHING;

    -- Levels 12, 20, … from the level-8, 16, … nodes already stored, while there are any.
    target := 12;
    WHILE target < 63 AND EXISTS (SELECT 1 FROM public.audit_tree_nodes WHERE level = target - 4) LOOP
        INSERT INTO public.audit_tree_nodes (tenant_id, level, idx, hash)
        SELECT n.tenant_id, target, n.idx / 16, pg_temp.audit_fold(array_agg(n.hash ORDER BY n.idx))
        FROM public.audit_tree_nodes n JOIN public.audit_heads h ON h.tenant_id = n.tenant_id
        WHERE n.level = target - 4 AND n.idx < (h.tree_size >> target) * 16
        GROUP BY n.tenant_id, n.idx / 16
        HAVING count(*) = 16
        ON CONFLICT DO NOTHING;
        target := target + 8;
    END LOOP;
END;
$$;

DROP FUNCTION pg_temp.audit_fold(bytea[]);
