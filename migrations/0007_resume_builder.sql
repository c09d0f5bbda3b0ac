-- 0007 Resume builder "enhanced AI assistant" (seed 004): optimizations,
-- ai_threads, content_modifications, style_customization_history, and
-- chat_sessions.openai_thread_id.
--
-- Seed 004 reports four migrations that never applied unattended. Here they are
-- plain, ordered DDL applied by the runner in one transaction: no IF NOT EXISTS
-- (a half-applied state fails loudly instead of being papered over), parents
-- created before children, and optimizations — which the seed only ALTERs — is
-- created here first (minimal invented base) with ai_modification_count.
-- chat_sessions comes from 0006 (shared with the marketing platform).
-- Deviations: unique openai_thread_id is per tenant; session/message links are
-- ON DELETE SET NULL (the seed gave no action); the seed's "full" policies are
-- kept for authenticated, and service_role acting for the subject may also
-- delete (erasure) where the seed had no DELETE policy.

-- ---------------------------------------------------------------------------
-- optimizations (a resume optimised against a job description)
-- ---------------------------------------------------------------------------
CREATE TABLE public.optimizations (
    id                    uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id             uuid         NOT NULL DEFAULT auth.tenant_id()
                                       REFERENCES public.tenants (id) ON DELETE CASCADE,
    user_id               uuid         NOT NULL,
    job_title             text,
    company_name          text,
    job_description       text,
    original_content      jsonb        NOT NULL DEFAULT '{}'::jsonb,  -- parsed resume
    optimized_content     jsonb        NOT NULL DEFAULT '{}'::jsonb,
    template_key          text,
    style_customization   jsonb        NOT NULL DEFAULT '{}'::jsonb,
    ats_score             numeric(5,2) CHECK (ats_score BETWEEN 0 AND 100),
    status                text         NOT NULL DEFAULT 'pending'
                                       CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    ai_modification_count integer      NOT NULL DEFAULT 0 CHECK (ai_modification_count >= 0),  -- seed 004
    created_at            timestamptz  NOT NULL DEFAULT now(),
    updated_at            timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT optimizations_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT optimizations_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX idx_optimizations_user_id ON public.optimizations (tenant_id, user_id, created_at DESC);
CREATE INDEX idx_optimizations_ai_modification_count ON public.optimizations (tenant_id, ai_modification_count);

CREATE TRIGGER update_optimizations_updated_at
    BEFORE UPDATE ON public.optimizations
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.optimizations ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.optimizations AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own optimizations" ON public.optimizations
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Users can create own optimizations" ON public.optimizations
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own optimizations" ON public.optimizations
    FOR UPDATE TO authenticated, service_role USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can delete own optimizations" ON public.optimizations
    FOR DELETE TO authenticated, service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.optimizations TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- chat_sessions.openai_thread_id (seed migration 20250118000004)
-- ---------------------------------------------------------------------------
ALTER TABLE public.chat_sessions ADD COLUMN openai_thread_id text
    CHECK (char_length(openai_thread_id) <= 255);
-- seed: VARCHAR UNIQUE + index; unique per tenant (the index serves lookups)
ALTER TABLE public.chat_sessions
    ADD CONSTRAINT chat_sessions_tenant_openai_thread_id_key UNIQUE (tenant_id, openai_thread_id);

-- ---------------------------------------------------------------------------
-- ai_threads (seed migration 20250118000001): 5 indexes, 4 policies
-- ---------------------------------------------------------------------------
CREATE TABLE public.ai_threads (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id           uuid        NOT NULL DEFAULT auth.tenant_id()
                                    REFERENCES public.tenants (id) ON DELETE CASCADE,
    user_id             uuid        NOT NULL,
    optimization_id     uuid,
    session_id          uuid,
    openai_thread_id    varchar(255) NOT NULL,
    openai_assistant_id varchar(255),
    status              varchar(20) NOT NULL DEFAULT 'active'
                                    CHECK (status IN ('active', 'archived', 'error')),
    metadata            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    last_message_at     timestamptz,
    archived_at         timestamptz,
    CONSTRAINT ai_threads_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT ai_threads_optimization_fk FOREIGN KEY (tenant_id, optimization_id)
        REFERENCES public.optimizations (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT ai_threads_session_fk FOREIGN KEY (tenant_id, session_id)
        REFERENCES public.chat_sessions (tenant_id, id) ON DELETE SET NULL (session_id),
    CONSTRAINT ai_threads_tenant_openai_thread_id_key UNIQUE (tenant_id, openai_thread_id)
);
CREATE INDEX idx_ai_threads_user_id ON public.ai_threads (tenant_id, user_id);
CREATE INDEX idx_ai_threads_optimization_id ON public.ai_threads (tenant_id, optimization_id);
CREATE INDEX idx_ai_threads_session_id ON public.ai_threads (tenant_id, session_id);
-- idx_ai_threads_openai_thread_id: served by the unique (tenant_id, openai_thread_id)
CREATE INDEX idx_ai_threads_status ON public.ai_threads (tenant_id, status);

ALTER TABLE public.ai_threads ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.ai_threads AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own threads" ON public.ai_threads
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Users can create own threads" ON public.ai_threads
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own threads" ON public.ai_threads
    FOR UPDATE TO authenticated, service_role USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can delete own threads" ON public.ai_threads
    FOR DELETE TO authenticated, service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.ai_threads TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- content_modifications (seed migration 20250118000002): audit trail of AI edits.
-- 6 indexes; seed policies SELECT, INSERT, UPDATE (for revert flags).
-- ---------------------------------------------------------------------------
CREATE TABLE public.content_modifications (
    id                          uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id                   uuid         NOT NULL DEFAULT auth.tenant_id()
                                             REFERENCES public.tenants (id) ON DELETE CASCADE,
    user_id                     uuid         NOT NULL,
    optimization_id             uuid         NOT NULL,
    session_id                  uuid,
    message_id                  uuid,
    operation                   varchar(20)  NOT NULL
                                             CHECK (operation IN ('replace', 'prefix', 'suffix', 'append', 'insert', 'remove')),
    field_path                  varchar(500) NOT NULL,   -- e.g. experiences[0].title
    old_value                   text,
    new_value                   text,
    reason                      text,
    intent                      varchar(50),             -- tip_implementation, content_edit, …
    ats_score_before            numeric(5,2) CHECK (ats_score_before BETWEEN 0 AND 100),
    ats_score_after             numeric(5,2) CHECK (ats_score_after BETWEEN 0 AND 100),
    score_change                numeric(6,2) GENERATED ALWAYS AS (ats_score_after - ats_score_before) STORED,
    is_reverted                 boolean      NOT NULL DEFAULT false,
    reverted_at                 timestamptz,
    reverted_by_modification_id uuid,
    applied_by                  varchar(20)  NOT NULL DEFAULT 'ai_assistant'
                                             CHECK (applied_by IN ('ai_assistant', 'user', 'system')),
    created_at                  timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT content_modifications_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT content_modifications_optimization_fk FOREIGN KEY (tenant_id, optimization_id)
        REFERENCES public.optimizations (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT content_modifications_session_fk FOREIGN KEY (tenant_id, session_id)
        REFERENCES public.chat_sessions (tenant_id, id) ON DELETE SET NULL (session_id),
    CONSTRAINT content_modifications_message_fk FOREIGN KEY (tenant_id, message_id)
        REFERENCES public.chat_messages (tenant_id, id) ON DELETE SET NULL (message_id),
    CONSTRAINT content_modifications_tenant_id_id_key UNIQUE (tenant_id, id),
    -- self reference for reverts
    CONSTRAINT content_modifications_reverted_by_fk FOREIGN KEY (tenant_id, reverted_by_modification_id)
        REFERENCES public.content_modifications (tenant_id, id) ON DELETE SET NULL (reverted_by_modification_id),
    CONSTRAINT content_modifications_revert_check CHECK (is_reverted OR reverted_at IS NULL)
);
CREATE INDEX idx_content_modifications_user_id ON public.content_modifications (tenant_id, user_id);
CREATE INDEX idx_content_modifications_optimization_id ON public.content_modifications (tenant_id, optimization_id, created_at DESC);
CREATE INDEX idx_content_modifications_session_id ON public.content_modifications (tenant_id, session_id);
CREATE INDEX idx_content_modifications_field_path ON public.content_modifications (tenant_id, optimization_id, field_path);
CREATE INDEX idx_content_modifications_created_at ON public.content_modifications (tenant_id, created_at DESC);
CREATE INDEX idx_content_modifications_is_reverted ON public.content_modifications (tenant_id, optimization_id)
    WHERE NOT is_reverted;
CREATE INDEX idx_content_modifications_message_id ON public.content_modifications (tenant_id, message_id);
CREATE INDEX idx_content_modifications_reverted_by ON public.content_modifications (tenant_id, reverted_by_modification_id);

ALTER TABLE public.content_modifications ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.content_modifications AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own modifications" ON public.content_modifications
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Users can create modifications of own optimizations" ON public.content_modifications
    FOR INSERT TO authenticated, service_role
    WITH CHECK (auth.uid() = user_id
                AND EXISTS (SELECT 1 FROM public.optimizations o
                            WHERE o.id = content_modifications.optimization_id AND o.user_id = auth.uid()));
CREATE POLICY "Users can update own modifications" ON public.content_modifications
    FOR UPDATE TO authenticated, service_role
    USING (auth.uid() = user_id)
    WITH CHECK (auth.uid() = user_id
                AND EXISTS (SELECT 1 FROM public.optimizations o
                            WHERE o.id = content_modifications.optimization_id AND o.user_id = auth.uid()));
CREATE POLICY "Service role deletes subject modifications" ON public.content_modifications
    FOR DELETE TO service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.content_modifications TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- style_customization_history (seed migration 20250118000003): 4 indexes,
-- seed policies SELECT, INSERT.
-- ---------------------------------------------------------------------------
CREATE TABLE public.style_customization_history (
    id                     uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id              uuid        NOT NULL DEFAULT auth.tenant_id()
                                       REFERENCES public.tenants (id) ON DELETE CASCADE,
    user_id                uuid        NOT NULL,
    optimization_id        uuid        NOT NULL,
    session_id             uuid,
    message_id             uuid,
    customization_type     varchar(20) NOT NULL
                                       CHECK (customization_type IN ('color', 'font', 'spacing', 'layout', 'mixed')),
    changes                jsonb       NOT NULL,
    previous_customization jsonb,
    request_text           text,
    applied_by             varchar(20) NOT NULL DEFAULT 'ai_assistant'
                                       CHECK (applied_by IN ('ai_assistant', 'user', 'system')),
    created_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT style_customization_history_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT style_customization_history_optimization_fk FOREIGN KEY (tenant_id, optimization_id)
        REFERENCES public.optimizations (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT style_customization_history_session_fk FOREIGN KEY (tenant_id, session_id)
        REFERENCES public.chat_sessions (tenant_id, id) ON DELETE SET NULL (session_id),
    CONSTRAINT style_customization_history_message_fk FOREIGN KEY (tenant_id, message_id)
        REFERENCES public.chat_messages (tenant_id, id) ON DELETE SET NULL (message_id)
);
CREATE INDEX idx_style_history_user_id ON public.style_customization_history (tenant_id, user_id);
CREATE INDEX idx_style_history_optimization_id ON public.style_customization_history (tenant_id, optimization_id, created_at DESC);
CREATE INDEX idx_style_history_created_at ON public.style_customization_history (tenant_id, created_at DESC);
CREATE INDEX idx_style_history_customization_type ON public.style_customization_history (tenant_id, customization_type);
CREATE INDEX idx_style_history_session_id ON public.style_customization_history (tenant_id, session_id);
CREATE INDEX idx_style_history_message_id ON public.style_customization_history (tenant_id, message_id);

ALTER TABLE public.style_customization_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.style_customization_history AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own style history" ON public.style_customization_history
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Users can record own style history" ON public.style_customization_history
    FOR INSERT TO authenticated, service_role
    WITH CHECK (auth.uid() = user_id
                AND EXISTS (SELECT 1 FROM public.optimizations o
                            WHERE o.id = style_customization_history.optimization_id AND o.user_id = auth.uid()));
CREATE POLICY "Service role deletes subject style history" ON public.style_customization_history
    FOR DELETE TO service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.style_customization_history TO anon, authenticated, service_role;
