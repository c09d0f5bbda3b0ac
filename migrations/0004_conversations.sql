-- 0004 Creative Director conversations (seed 001, its migrations 030 and 031):
-- brands, conversation_sessions, conversation_messages, 7 helper functions,
-- 2 triggers, 2 analytics views.
--
-- The seed names brands only as a foreign-key target; the brands table here is a
-- minimal invention owned by a user. The seed's "9 valid states" are named only
-- as initial → gathering → … → delivered (+ cancelled via its cancel function);
-- the states in between are our choice.
-- Helper functions are SECURITY INVOKER: they run under the caller's RLS, so they
-- can neither cross users nor tenants.

-- ---------------------------------------------------------------------------
-- brands
-- ---------------------------------------------------------------------------
CREATE TABLE public.brands (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid        NOT NULL DEFAULT auth.tenant_id()
                            REFERENCES public.tenants (id) ON DELETE CASCADE,
    user_id     uuid        NOT NULL,
    name        text        NOT NULL CHECK (btrim(name) <> ''),
    description text,
    guidelines  jsonb       NOT NULL DEFAULT '{}'::jsonb,   -- voice, tone, colours, …
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT brands_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT brands_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX idx_brands_user_id ON public.brands (tenant_id, user_id);

CREATE TRIGGER update_brands_updated_at
    BEFORE UPDATE ON public.brands
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.brands ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.brands AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own brands" ON public.brands
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Users can create own brands" ON public.brands
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own brands" ON public.brands
    FOR UPDATE TO authenticated, service_role USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can delete own brands" ON public.brands
    FOR DELETE TO authenticated, service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.brands TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- conversation_sessions (seed 030): 12 columns + tenant_id
-- ---------------------------------------------------------------------------
CREATE TABLE public.conversation_sessions (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id           uuid        NOT NULL DEFAULT auth.tenant_id()
                                    REFERENCES public.tenants (id) ON DELETE CASCADE,
    brand_id            uuid        NOT NULL,
    user_id             uuid        NOT NULL,
    state               text        NOT NULL DEFAULT 'initial' CHECK (state IN (
                            'initial', 'gathering', 'clarifying', 'planning', 'confirming',
                            'delegating', 'executing', 'delivered', 'cancelled')),
    parsed_intent       jsonb,
    answered_questions  jsonb       NOT NULL DEFAULT '{}'::jsonb,
    pending_questions   jsonb       NOT NULL DEFAULT '[]'::jsonb,
    selected_kb_ids     uuid[]      NOT NULL DEFAULT '{}',
    active_task_plan_id uuid,                     -- task plans live outside this schema
    created_at          timestamptz NOT NULL DEFAULT now(),
    last_activity_at    timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz,
    CONSTRAINT conversation_sessions_brand_fk FOREIGN KEY (tenant_id, brand_id)
        REFERENCES public.brands (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT conversation_sessions_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT conversation_sessions_tenant_id_id_key UNIQUE (tenant_id, id)
);
-- seed: 5 indexes (user, brand, active partial, recent activity, user+state)
CREATE INDEX idx_sessions_user_id ON public.conversation_sessions (tenant_id, user_id);
CREATE INDEX idx_sessions_brand_id ON public.conversation_sessions (tenant_id, brand_id);
CREATE INDEX idx_sessions_active ON public.conversation_sessions (tenant_id, user_id, last_activity_at DESC)
    WHERE state NOT IN ('delivered', 'cancelled');
CREATE INDEX idx_sessions_last_activity ON public.conversation_sessions (tenant_id, last_activity_at DESC);
CREATE INDEX idx_sessions_user_state ON public.conversation_sessions (tenant_id, user_id, state);

-- seed function 1: auto-update timestamp trigger
CREATE FUNCTION public.update_session_activity() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = public, pg_temp
AS $$
BEGIN
    NEW.last_activity_at = now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER trigger_update_session_activity
    BEFORE UPDATE ON public.conversation_sessions
    FOR EACH ROW EXECUTE FUNCTION public.update_session_activity();

ALTER TABLE public.conversation_sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.conversation_sessions AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own sessions" ON public.conversation_sessions
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
-- Writes also require the brand to be the user's own (the seed only checked user_id).
CREATE POLICY "Users can create own sessions" ON public.conversation_sessions
    FOR INSERT TO authenticated, service_role
    WITH CHECK (auth.uid() = user_id
                AND EXISTS (SELECT 1 FROM public.brands b
                            WHERE b.id = conversation_sessions.brand_id AND b.user_id = auth.uid()));
CREATE POLICY "Users can update own sessions" ON public.conversation_sessions
    FOR UPDATE TO authenticated, service_role
    USING (auth.uid() = user_id)
    WITH CHECK (auth.uid() = user_id
                AND EXISTS (SELECT 1 FROM public.brands b
                            WHERE b.id = conversation_sessions.brand_id AND b.user_id = auth.uid()));
CREATE POLICY "Users can delete own sessions" ON public.conversation_sessions
    FOR DELETE TO authenticated, service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.conversation_sessions TO anon, authenticated, service_role;

-- seed functions 2 and 3. Return whether a session of the caller was changed.
CREATE FUNCTION public.complete_conversation_session(p_session_id uuid) RETURNS boolean
    LANGUAGE plpgsql
    SECURITY INVOKER
    SET search_path = public, pg_temp
AS $$
BEGIN
    UPDATE public.conversation_sessions
       SET state = 'delivered', completed_at = now()
     WHERE id = p_session_id
       AND state <> 'cancelled';
    RETURN FOUND;
END;
$$;

CREATE FUNCTION public.cancel_conversation_session(p_session_id uuid) RETURNS boolean
    LANGUAGE plpgsql
    SECURITY INVOKER
    SET search_path = public, pg_temp
AS $$
BEGIN
    UPDATE public.conversation_sessions
       SET state = 'cancelled', completed_at = now()
     WHERE id = p_session_id
       AND state <> 'delivered';
    RETURN FOUND;
END;
$$;

-- ---------------------------------------------------------------------------
-- conversation_messages (seed 031): 15 columns + tenant_id
-- ---------------------------------------------------------------------------
CREATE TABLE public.conversation_messages (
    id              uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid          NOT NULL DEFAULT auth.tenant_id()
                                  REFERENCES public.tenants (id) ON DELETE CASCADE,
    session_id      uuid          NOT NULL,
    brand_id        uuid          NOT NULL,
    user_id         uuid          NOT NULL,
    role            text          NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content         text          NOT NULL,
    tokens_used     integer       CHECK (tokens_used >= 0),
    model_used      text,
    provider        text,
    cost_usd        numeric(12,6) CHECK (cost_usd >= 0),
    latency_ms      integer       CHECK (latency_ms >= 0),
    action_taken    text,
    questions_asked jsonb,
    delegation_plan jsonb,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT conversation_messages_session_fk FOREIGN KEY (tenant_id, session_id)
        REFERENCES public.conversation_sessions (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT conversation_messages_brand_fk FOREIGN KEY (tenant_id, brand_id)
        REFERENCES public.brands (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT conversation_messages_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE
);
-- seed: 7 indexes
CREATE INDEX idx_messages_session_id ON public.conversation_messages (tenant_id, session_id, created_at);
CREATE INDEX idx_messages_user_id ON public.conversation_messages (tenant_id, user_id, created_at DESC);
CREATE INDEX idx_messages_brand_id ON public.conversation_messages (tenant_id, brand_id);
CREATE INDEX idx_messages_role ON public.conversation_messages (tenant_id, session_id, role);
CREATE INDEX idx_messages_cost ON public.conversation_messages (tenant_id, session_id, cost_usd)
    WHERE cost_usd IS NOT NULL;
CREATE INDEX idx_messages_provider ON public.conversation_messages (tenant_id, provider, created_at DESC)
    WHERE provider IS NOT NULL;
CREATE INDEX idx_messages_provider_cost ON public.conversation_messages (tenant_id, provider, cost_usd)
    WHERE provider IS NOT NULL;

ALTER TABLE public.conversation_messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.conversation_messages AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own messages" ON public.conversation_messages
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
-- Writes also require the parent session to be the user's own (the seed only
-- checked user_id; the message trigger then touches only the caller's session).
CREATE POLICY "Users can create own messages" ON public.conversation_messages
    FOR INSERT TO authenticated, service_role
    WITH CHECK (auth.uid() = user_id
                AND EXISTS (SELECT 1 FROM public.conversation_sessions s
                            WHERE s.id = conversation_messages.session_id AND s.user_id = auth.uid()));
CREATE POLICY "Users can update own messages" ON public.conversation_messages
    FOR UPDATE TO authenticated, service_role
    USING (auth.uid() = user_id)
    WITH CHECK (auth.uid() = user_id
                AND EXISTS (SELECT 1 FROM public.conversation_sessions s
                            WHERE s.id = conversation_messages.session_id AND s.user_id = auth.uid()));
CREATE POLICY "Users can delete own messages" ON public.conversation_messages
    FOR DELETE TO authenticated, service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.conversation_messages TO anon, authenticated, service_role;

-- seed function 4: a new message bumps its session's activity. SECURITY INVOKER:
-- the insert policy already guarantees the session is the caller's own, so the
-- caller's own UPDATE policy covers this write (and RLS keeps it in-tenant).
CREATE FUNCTION public.update_session_on_message() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY INVOKER
    SET search_path = public, pg_temp
AS $$
BEGIN
    UPDATE public.conversation_sessions
       SET last_activity_at = NEW.created_at
     WHERE id = NEW.session_id
       AND tenant_id = NEW.tenant_id;
    RETURN NEW;
END;
$$;

CREATE TRIGGER trigger_update_session_on_message
    AFTER INSERT ON public.conversation_messages
    FOR EACH ROW EXECUTE FUNCTION public.update_session_on_message();

-- seed function 5: the most recent p_limit messages, oldest first.
CREATE FUNCTION public.get_conversation_history(p_session_id uuid, p_limit integer DEFAULT 20)
    RETURNS SETOF public.conversation_messages
    LANGUAGE sql STABLE
    SECURITY INVOKER
    SET search_path = public, pg_temp
AS $$
    SELECT *
      FROM (SELECT m.*
              FROM public.conversation_messages m
             WHERE m.session_id = p_session_id
             ORDER BY m.created_at DESC, m.id DESC
             LIMIT greatest(p_limit, 0)) recent
     ORDER BY recent.created_at, recent.id;
$$;

-- seed function 6: total LLM cost of a session.
CREATE FUNCTION public.get_session_cost(p_session_id uuid) RETURNS numeric
    LANGUAGE sql STABLE
    SECURITY INVOKER
    SET search_path = public, pg_temp
AS $$
    SELECT coalesce(sum(m.cost_usd), 0)
      FROM public.conversation_messages m
     WHERE m.session_id = p_session_id;
$$;

-- seed function 7: aggregate stats by role.
CREATE FUNCTION public.get_session_message_stats(p_session_id uuid)
    RETURNS TABLE (role text, message_count bigint, total_tokens bigint,
                   total_cost numeric, avg_latency_ms numeric)
    LANGUAGE sql STABLE
    SECURITY INVOKER
    SET search_path = public, pg_temp
AS $$
    SELECT m.role,
           count(*),
           coalesce(sum(m.tokens_used), 0)::bigint,
           coalesce(sum(m.cost_usd), 0),
           avg(m.latency_ms)
      FROM public.conversation_messages m
     WHERE m.session_id = p_session_id
     GROUP BY m.role
     ORDER BY m.role;
$$;

GRANT EXECUTE ON FUNCTION
    public.complete_conversation_session(uuid),
    public.cancel_conversation_session(uuid),
    public.get_conversation_history(uuid, integer),
    public.get_session_cost(uuid),
    public.get_session_message_stats(uuid)
    TO authenticated, service_role;

-- ---------------------------------------------------------------------------
-- Analytics views (seed 031). security_invoker: the caller's RLS applies, so each
-- user sees aggregates over their own messages in their own tenant only.
-- ---------------------------------------------------------------------------
CREATE VIEW public.provider_usage_stats WITH (security_invoker = true) AS
SELECT m.tenant_id,
       m.provider,
       m.model_used,
       count(*)                          AS request_count,
       coalesce(sum(m.tokens_used), 0)   AS total_tokens,
       coalesce(sum(m.cost_usd), 0)      AS total_cost_usd,
       round(avg(m.latency_ms), 2)       AS avg_latency_ms,
       min(m.created_at)                 AS first_used_at,
       max(m.created_at)                 AS last_used_at
  FROM public.conversation_messages m
 WHERE m.provider IS NOT NULL
   AND m.created_at >= now() - interval '30 days'
 GROUP BY m.tenant_id, m.provider, m.model_used;

CREATE VIEW public.daily_message_volume WITH (security_invoker = true) AS
SELECT m.tenant_id,
       (m.created_at AT TIME ZONE 'UTC')::date           AS day,
       m.user_id,
       count(*)                                          AS message_count,
       count(*) FILTER (WHERE m.role = 'user')           AS user_messages,
       count(*) FILTER (WHERE m.role = 'assistant')      AS assistant_messages,
       coalesce(sum(m.tokens_used), 0)                   AS total_tokens,
       coalesce(sum(m.cost_usd), 0)                      AS total_cost_usd
  FROM public.conversation_messages m
 GROUP BY m.tenant_id, (m.created_at AT TIME ZONE 'UTC')::date, m.user_id;

GRANT SELECT ON public.provider_usage_stats, public.daily_message_volume TO authenticated, service_role;
