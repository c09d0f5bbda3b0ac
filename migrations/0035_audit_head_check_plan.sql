-- 0035 audit appends in constant time: the head row's trigger finds the head's entry by primary key.
--
-- audit_head_advance() checks, on every batch, that the new head points at an existing entry.
-- PL/pgSQL caches that query's plan per session and, after five calls, may keep a generic plan.
-- Planned generically on a table without statistics (a new database, or a fast-growing tenant
-- between autoanalyze runs), Postgres picked audit_events_tenant_at_idx with only tenant_id as its
-- condition and filtered seq and hash: every batch read the tenant's whole chain, so appends slowed
-- down as the chain grew (benchmarks/audit-vs-pgbench: 7k appends/s against 24k/s with this).
-- Planned with the values of each call, the primary key (tenant_id, seq) is the only index that
-- narrows to one row, and planning costs microseconds once per batch.
-- Test: AuditTests "advancing the head reads one entry, not the chain, even under generic plans".

ALTER FUNCTION public.audit_head_advance() SET plan_cache_mode = force_custom_plan;
