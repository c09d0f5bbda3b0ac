-- 0019 audit transparency log: an RFC 9162 Merkle tree per tenant over the existing chain,
-- and checkpoints as C2SP signed notes (Sources/Audit/ENCODING.md §7-§8).
--
-- Nothing in history is rewritten: entries keep their chain hash (the tree's leaves are
-- SHA-256(0x00 ‖ entry hash)), old checkpoints keep their signatures. A tenant's tree is built
-- by the gateway on its next append or checkpoint (tree_size < seq until then).

-- ---------------------------------------------------------------------------
-- The tree's right edge, per tenant, on the head row that appenders already lock:
-- tree_size leaves and the hashes of its complete subtrees, largest first (32 bytes per
-- set bit of tree_size). Appends extend it in O(log n).
-- ---------------------------------------------------------------------------
ALTER TABLE public.audit_heads
    ADD COLUMN tree_size bigint NOT NULL DEFAULT 0,
    ADD COLUMN frontier  bytea  NOT NULL DEFAULT ''::bytea,
    ADD CONSTRAINT audit_heads_tree_size CHECK (tree_size >= 0),
    ADD CONSTRAINT audit_heads_frontier_shape CHECK (octet_length(frontier) % 32 = 0);

-- The head may move forward (as before), or stay at the same entry while its tree catches up
-- with a chain written before this migration; the tree never shrinks.
CREATE OR REPLACE FUNCTION public.audit_head_advance() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = public, pg_temp
AS $$
BEGIN
    IF NEW.tenant_id <> OLD.tenant_id OR NEW.seq < OLD.seq OR NEW.tree_size < OLD.tree_size
       OR (NEW.seq = OLD.seq AND (NEW.hash <> OLD.hash OR NEW.tree_size <= OLD.tree_size)) THEN
        RAISE EXCEPTION 'audit head of tenant % may only move forward', OLD.tenant_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.audit_events e
                   WHERE e.tenant_id = NEW.tenant_id AND e.seq = NEW.seq AND e.hash = NEW.hash) THEN
        RAISE EXCEPTION 'audit head of tenant % must point at an existing entry', NEW.tenant_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;

-- ---------------------------------------------------------------------------
-- Stored interior nodes, for proofs: the hash of every complete subtree whose height is a
-- multiple of 8 (256, 65536, … leaves). Any other node is recomputed from at most 128
-- nodes (or entry hashes) of the stored level below it, so a proof reads O(log n) small
-- ranges while appends write one row per 256 entries.
-- ---------------------------------------------------------------------------
CREATE TABLE public.audit_tree_nodes (
    tenant_id uuid     NOT NULL REFERENCES public.tenants (id),
    level     smallint NOT NULL CHECK (level > 0 AND level % 8 = 0),
    idx       bigint   NOT NULL CHECK (idx >= 0),
    hash      bytea    NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (tenant_id, level, idx)
);

CREATE TRIGGER audit_tree_nodes_append_only
    BEFORE UPDATE OR DELETE ON public.audit_tree_nodes
    FOR EACH ROW EXECUTE FUNCTION public.audit_refuse_change();
CREATE TRIGGER audit_tree_nodes_no_truncate
    BEFORE TRUNCATE ON public.audit_tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_refuse_change();

-- ---------------------------------------------------------------------------
-- Checkpoints also carry the tree's root at seq and the C2SP signed note (tlog-checkpoint
-- body: origin, tree size = seq, base64 root) signed by the same key. NULL for checkpoints
-- signed before this migration; they stay verifiable by their v1 signature.
-- ---------------------------------------------------------------------------
ALTER TABLE public.audit_checkpoints
    ADD COLUMN root_hash bytea CHECK (octet_length(root_hash) = 32),
    ADD COLUMN note      text,
    ADD CONSTRAINT audit_checkpoints_note_with_root CHECK ((root_hash IS NULL) = (note IS NULL));

-- ---------------------------------------------------------------------------
-- Witness cosignatures (C2SP tlog-cosignature, Ed25519 cosignature/v1) of a checkpoint's note,
-- as submitted by witnesses: the signature line, verified by the gateway before it is stored.
-- Readers verify them again against the witness keys they pin.
-- ---------------------------------------------------------------------------
CREATE TABLE public.audit_cosignatures (
    tenant_id    uuid   NOT NULL,
    seq          bigint NOT NULL,
    witness_name text   NOT NULL CHECK (witness_name ~ '^[^\s+]{1,255}$'),
    key_id       bytea  NOT NULL CHECK (octet_length(key_id) = 4),
    line         text   NOT NULL CHECK (length(line) <= 1024),
    PRIMARY KEY (tenant_id, seq, witness_name, key_id),
    FOREIGN KEY (tenant_id, seq) REFERENCES public.audit_checkpoints (tenant_id, seq)
);

CREATE TRIGGER audit_cosignatures_append_only
    BEFORE UPDATE OR DELETE ON public.audit_cosignatures
    FOR EACH ROW EXECUTE FUNCTION public.audit_refuse_change();
CREATE TRIGGER audit_cosignatures_no_truncate
    BEFORE TRUNCATE ON public.audit_cosignatures
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_refuse_change();

GRANT SELECT, INSERT ON public.audit_tree_nodes, public.audit_cosignatures TO privacy_gateway;
REVOKE ALL ON public.audit_tree_nodes, public.audit_cosignatures FROM PUBLIC, anon, authenticated, service_role;
