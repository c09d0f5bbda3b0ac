-- 0003 AI project assistant (seed 000): job_drafts, analytics, ghl_opportunities,
-- ai_assistant_sessions. The seed lists only the columns its migrations added; the
-- base columns here (title, description, event_type, …) are a minimal invention.
-- job_drafts keeps a BIGINT key because the seed's job_draft_id columns are BIGINT.
--
-- Anonymous assistant sessions: rows with user_id IS NULL belong to whoever holds
-- the JWT claim session_id (an anon token minted for that session):
--     user_id IS NULL AND session_id = (auth.jwt() ->> 'session_id')
-- An authenticated user owns rows with auth.uid() = user_id, still sees the
-- anonymous rows of the session its token names, and may claim them by setting
-- user_id to themselves.
-- Columns compared in policies are text (CHECK on length) rather than the seed's
-- VARCHAR(255), so pg_get_expr prints them without casts for the policy mirror.

-- ---------------------------------------------------------------------------
-- ai_assistant_sessions (seed 000 migration 20250830153705)
-- ---------------------------------------------------------------------------
CREATE TABLE public.ai_assistant_sessions (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id          uuid        NOT NULL DEFAULT auth.tenant_id()
                                   REFERENCES public.tenants (id) ON DELETE CASCADE,
    session_id         text        NOT NULL CHECK (char_length(session_id) BETWEEN 1 AND 255),
    developer_ref      varchar(255),
    source             varchar(100),
    user_id            uuid,                         -- NULL = anonymous session
    session_data       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    current_slot_index integer     NOT NULL DEFAULT 0 CHECK (current_slot_index >= 0),
    completion_score   integer     NOT NULL DEFAULT 0 CHECK (completion_score BETWEEN 0 AND 100),
    is_active          boolean     NOT NULL DEFAULT true,
    started_at         timestamptz NOT NULL DEFAULT now(),
    last_activity_at   timestamptz NOT NULL DEFAULT now(),
    ended_at           timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ai_assistant_sessions_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    -- seed: "session_id - Unique session identifier"; unique per tenant
    CONSTRAINT ai_assistant_sessions_tenant_session_key UNIQUE (tenant_id, session_id)
);
CREATE INDEX idx_ai_assistant_sessions_user_id ON public.ai_assistant_sessions (tenant_id, user_id);
CREATE INDEX idx_ai_assistant_sessions_developer_ref ON public.ai_assistant_sessions (tenant_id, developer_ref);
CREATE INDEX idx_ai_assistant_sessions_source ON public.ai_assistant_sessions (tenant_id, source);
CREATE INDEX idx_ai_assistant_sessions_active ON public.ai_assistant_sessions (tenant_id, is_active, last_activity_at DESC);

CREATE TRIGGER update_ai_assistant_sessions_updated_at
    BEFORE UPDATE ON public.ai_assistant_sessions
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.ai_assistant_sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.ai_assistant_sessions AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Session holders can view their anonymous session" ON public.ai_assistant_sessions
    FOR SELECT TO anon, authenticated
    USING (user_id IS NULL AND session_id = (auth.jwt() ->> 'session_id'));
CREATE POLICY "Anonymous users can create their session" ON public.ai_assistant_sessions
    FOR INSERT TO anon
    WITH CHECK (user_id IS NULL AND session_id = (auth.jwt() ->> 'session_id'));
CREATE POLICY "Anonymous users can update their session" ON public.ai_assistant_sessions
    FOR UPDATE TO anon
    USING (user_id IS NULL AND session_id = (auth.jwt() ->> 'session_id'))
    WITH CHECK (user_id IS NULL AND session_id = (auth.jwt() ->> 'session_id'));
CREATE POLICY "Users can view own sessions" ON public.ai_assistant_sessions
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Users can create own sessions" ON public.ai_assistant_sessions
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own sessions" ON public.ai_assistant_sessions
    FOR UPDATE TO authenticated, service_role
    USING (auth.uid() = user_id OR (user_id IS NULL AND session_id = (auth.jwt() ->> 'session_id')))
    WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can delete own sessions" ON public.ai_assistant_sessions
    FOR DELETE TO authenticated, service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.ai_assistant_sessions TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- job_drafts (seed 000 migration 20250830153702 + invented base columns)
-- ---------------------------------------------------------------------------
CREATE TABLE public.job_drafts (
    id                     bigint      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    tenant_id              uuid        NOT NULL DEFAULT auth.tenant_id()
                                       REFERENCES public.tenants (id) ON DELETE CASCADE,
    user_id                uuid,                     -- NULL = drafted in an anonymous session
    title                  text,
    description            text,
    metadata               jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    -- columns added by the seed
    developer_ref          varchar(255),
    source                 varchar(100) CHECK (source IN ('email', 'ai_assistant', 'manual')),
    session_id             text        CHECK (char_length(session_id) <= 255),
    public_status          varchar(50) NOT NULL DEFAULT 'draft'
                                       CHECK (public_status IN ('draft', 'posted', 'in_progress', 'completed')),
    generated_title        text,
    generated_skills       text[],
    generated_milestones   text[],
    estimated_budget_range jsonb,                    -- {"min": …, "max": …}
    estimated_timeline     varchar(100),
    completion_score       integer     CHECK (completion_score BETWEEN 0 AND 100),
    ghl_opportunity_id     varchar(255),
    wireframe_url          varchar(500),
    github_pages_url       varchar(500),
    CONSTRAINT job_drafts_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT job_drafts_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX idx_job_drafts_user_id ON public.job_drafts (tenant_id, user_id, created_at DESC);
CREATE INDEX idx_job_drafts_developer_ref ON public.job_drafts (tenant_id, developer_ref);
CREATE INDEX idx_job_drafts_source ON public.job_drafts (tenant_id, source);
CREATE INDEX idx_job_drafts_session_id ON public.job_drafts (tenant_id, session_id);
CREATE INDEX idx_job_drafts_public_status ON public.job_drafts (tenant_id, public_status, created_at DESC);

CREATE TRIGGER update_job_drafts_updated_at
    BEFORE UPDATE ON public.job_drafts
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.job_drafts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.job_drafts AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Session holders can view anonymous session drafts" ON public.job_drafts
    FOR SELECT TO anon, authenticated
    USING (user_id IS NULL AND session_id = (auth.jwt() ->> 'session_id'));
CREATE POLICY "Anonymous users can create session drafts" ON public.job_drafts
    FOR INSERT TO anon
    WITH CHECK (user_id IS NULL AND session_id = (auth.jwt() ->> 'session_id'));
CREATE POLICY "Anonymous users can update their session drafts" ON public.job_drafts
    FOR UPDATE TO anon
    USING (user_id IS NULL AND session_id = (auth.jwt() ->> 'session_id'))
    WITH CHECK (user_id IS NULL AND session_id = (auth.jwt() ->> 'session_id'));
CREATE POLICY "Users can view own job drafts" ON public.job_drafts
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Users can create own job drafts" ON public.job_drafts
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own job drafts" ON public.job_drafts
    FOR UPDATE TO authenticated, service_role
    USING (auth.uid() = user_id OR (user_id IS NULL AND session_id = (auth.jwt() ->> 'session_id')))
    WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can delete own job drafts" ON public.job_drafts
    FOR DELETE TO authenticated, service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.job_drafts TO anon, authenticated, service_role;
GRANT USAGE, SELECT ON SEQUENCE public.job_drafts_id_seq TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- analytics (seed 000 migration 20250830153703 + invented base columns).
-- session_id is an added base column so anonymous sessions can record events.
-- Events are append-only for users; service_role (for the subject) may also
-- update/delete them (erasure, anonymisation).
-- ---------------------------------------------------------------------------
CREATE TABLE public.analytics (
    id                bigint      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    tenant_id         uuid        NOT NULL DEFAULT auth.tenant_id()
                                  REFERENCES public.tenants (id) ON DELETE CASCADE,
    user_id           uuid,
    session_id        text        CHECK (char_length(session_id) <= 255),
    event_type        text        NOT NULL CHECK (btrim(event_type) <> ''),
    event_data        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- columns added by the seed
    developer_ref     varchar(255),
    source            varchar(100),
    attribution_chain varchar(500),
    job_draft_id      bigint,
    slot_name         varchar(100),
    completion_score  integer     CHECK (completion_score BETWEEN 0 AND 100),
    CONSTRAINT analytics_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    -- seed name fk_analytics_job_draft_id; an event outlives its draft
    CONSTRAINT fk_analytics_job_draft_id FOREIGN KEY (tenant_id, job_draft_id)
        REFERENCES public.job_drafts (tenant_id, id) ON DELETE SET NULL (job_draft_id)
);
CREATE INDEX idx_analytics_user_id ON public.analytics (tenant_id, user_id, created_at DESC);
CREATE INDEX idx_analytics_session_id ON public.analytics (tenant_id, session_id);
CREATE INDEX idx_analytics_developer_ref ON public.analytics (tenant_id, developer_ref, created_at DESC);
CREATE INDEX idx_analytics_source ON public.analytics (tenant_id, source);
CREATE INDEX idx_analytics_job_draft_id ON public.analytics (tenant_id, job_draft_id);
CREATE INDEX idx_analytics_event_type_created ON public.analytics (tenant_id, event_type, created_at DESC);

ALTER TABLE public.analytics ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.analytics AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Anonymous users can record session events" ON public.analytics
    FOR INSERT TO anon
    WITH CHECK (user_id IS NULL AND session_id = (auth.jwt() ->> 'session_id'));
CREATE POLICY "Users can view own events" ON public.analytics
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Users can record own events" ON public.analytics
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Service role updates subject events" ON public.analytics
    FOR UPDATE TO service_role USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Service role deletes subject events" ON public.analytics
    FOR DELETE TO service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.analytics TO anon, authenticated, service_role;
GRANT USAGE, SELECT ON SEQUENCE public.analytics_id_seq TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- ghl_opportunities (seed 000 migration 20250830153704 + invented base columns).
-- GoHighLevel CRM mirror, written by the backend: users may read theirs;
-- service_role (for the subject) manages them.
-- ---------------------------------------------------------------------------
CREATE TABLE public.ghl_opportunities (
    id                  bigint        GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    tenant_id           uuid          NOT NULL DEFAULT auth.tenant_id()
                                      REFERENCES public.tenants (id) ON DELETE CASCADE,
    user_id             uuid,
    ghl_opportunity_id  varchar(255)  NOT NULL,   -- GoHighLevel's id (job_drafts.ghl_opportunity_id)
    name                text,
    pipeline_stage      varchar(100),
    status              varchar(50)   NOT NULL DEFAULT 'open'
                                      CHECK (status IN ('open', 'won', 'lost', 'abandoned')),
    monetary_value      numeric(12,2) CHECK (monetary_value >= 0),
    contact_name        text,
    contact_email       text,
    contact_phone       text,
    metadata            jsonb         NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz   NOT NULL DEFAULT now(),
    updated_at          timestamptz   NOT NULL DEFAULT now(),
    -- columns added by the seed
    developer_ref       varchar(255),
    source              varchar(100),
    job_draft_id        bigint,
    session_id          varchar(255),
    attribution_chain   varchar(500),
    CONSTRAINT ghl_opportunities_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_ghl_opportunities_job_draft_id FOREIGN KEY (tenant_id, job_draft_id)
        REFERENCES public.job_drafts (tenant_id, id) ON DELETE SET NULL (job_draft_id),
    CONSTRAINT ghl_opportunities_tenant_ghl_id_key UNIQUE (tenant_id, ghl_opportunity_id)
);
CREATE INDEX idx_ghl_opportunities_user_id ON public.ghl_opportunities (tenant_id, user_id);
CREATE INDEX idx_ghl_opportunities_developer_ref ON public.ghl_opportunities (tenant_id, developer_ref);
CREATE INDEX idx_ghl_opportunities_source ON public.ghl_opportunities (tenant_id, source);
CREATE INDEX idx_ghl_opportunities_session_id ON public.ghl_opportunities (tenant_id, session_id);
CREATE INDEX idx_ghl_opportunities_job_draft_id ON public.ghl_opportunities (tenant_id, job_draft_id);

CREATE TRIGGER update_ghl_opportunities_updated_at
    BEFORE UPDATE ON public.ghl_opportunities
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.ghl_opportunities ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.ghl_opportunities AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own opportunities" ON public.ghl_opportunities
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Service role creates subject opportunities" ON public.ghl_opportunities
    FOR INSERT TO service_role WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Service role updates subject opportunities" ON public.ghl_opportunities
    FOR UPDATE TO service_role USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Service role deletes subject opportunities" ON public.ghl_opportunities
    FOR DELETE TO service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.ghl_opportunities TO anon, authenticated, service_role;
GRANT USAGE, SELECT ON SEQUENCE public.ghl_opportunities_id_seq TO anon, authenticated, service_role;
