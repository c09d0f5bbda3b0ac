-- 0006 Marketing platform (seed 003): campaigns, campaign_tasks, leads,
-- lead_activities, chat_sessions, chat_messages, content_calendar, support_tickets,
-- user_preferences, ai_model_configs.
--
-- Seed 003 is a summary, not DDL: column lists beyond the ones it names are a
-- minimal invention. Kept from the seed: created_by as the owner column of
-- campaigns/campaign_tasks/leads/content_calendar, unique (created_by, name) on
-- campaigns, the partial index on open tasks, 1:1 user_preferences with
-- interface_mode simple|advanced, ai_model_configs unique (provider, model_name),
-- "standard user isolation" policies and updated_at triggers.
-- Deviations: ai_model_configs is "global" in the seed but every governed table is
-- per tenant here (each tenant manages its own model list); lead_activities has no
-- owner column and is reached through its lead; child rows with an owner column
-- must point at a parent the same user owns.

-- ---------------------------------------------------------------------------
-- campaigns
-- ---------------------------------------------------------------------------
CREATE TABLE public.campaigns (
    id              uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid          NOT NULL DEFAULT auth.tenant_id()
                                  REFERENCES public.tenants (id) ON DELETE CASCADE,
    created_by      uuid          NOT NULL,
    name            text          NOT NULL CHECK (btrim(name) <> ''),
    description     text,
    campaign_type   text,
    status          text          NOT NULL DEFAULT 'draft'
                                  CHECK (status IN ('draft', 'active', 'paused', 'completed', 'archived')),
    auto_managed    boolean       NOT NULL DEFAULT false,   -- seed: autopilot flag
    budget          numeric(12,2) CHECK (budget >= 0),
    start_date      date,
    end_date        date,
    channels        text[]        NOT NULL DEFAULT '{}',
    target_audience jsonb         NOT NULL DEFAULT '{}'::jsonb,
    demographics    jsonb         NOT NULL DEFAULT '{}'::jsonb,
    kpi_targets     jsonb         NOT NULL DEFAULT '{}'::jsonb,
    metrics         jsonb         NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT campaigns_created_by_fk FOREIGN KEY (tenant_id, created_by)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT campaigns_dates_check CHECK (end_date IS NULL OR start_date IS NULL OR end_date >= start_date),
    -- seed: unique campaign names per user
    CONSTRAINT campaigns_tenant_created_by_name_key UNIQUE (tenant_id, created_by, name),
    CONSTRAINT campaigns_tenant_id_id_key UNIQUE (tenant_id, id)
);
-- idx_campaigns_created_by: served by the unique (tenant_id, created_by, name)
CREATE INDEX idx_campaigns_status ON public.campaigns (tenant_id, status);
CREATE INDEX idx_campaigns_created_at ON public.campaigns (tenant_id, created_at DESC);

CREATE TRIGGER update_campaigns_updated_at
    BEFORE UPDATE ON public.campaigns
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.campaigns ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.campaigns AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own campaigns" ON public.campaigns
    FOR SELECT TO authenticated, service_role USING (auth.uid() = created_by);
CREATE POLICY "Users can create own campaigns" ON public.campaigns
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = created_by);
CREATE POLICY "Users can update own campaigns" ON public.campaigns
    FOR UPDATE TO authenticated, service_role USING (auth.uid() = created_by) WITH CHECK (auth.uid() = created_by);
CREATE POLICY "Users can delete own campaigns" ON public.campaigns
    FOR DELETE TO authenticated, service_role USING (auth.uid() = created_by);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.campaigns TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- campaign_tasks
-- ---------------------------------------------------------------------------
CREATE TABLE public.campaign_tasks (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid        NOT NULL DEFAULT auth.tenant_id()
                             REFERENCES public.tenants (id) ON DELETE CASCADE,
    campaign_id  uuid        NOT NULL,
    created_by   uuid        NOT NULL,
    title        text        NOT NULL CHECK (btrim(title) <> ''),
    description  text,
    task_type    text,
    status       text        NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'in_progress', 'completed', 'cancelled')),
    priority     text        NOT NULL DEFAULT 'medium'
                             CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    due_date     timestamptz,
    completed_at timestamptz,
    metadata     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT campaign_tasks_campaign_fk FOREIGN KEY (tenant_id, campaign_id)
        REFERENCES public.campaigns (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT campaign_tasks_created_by_fk FOREIGN KEY (tenant_id, created_by)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX idx_campaign_tasks_campaign_id ON public.campaign_tasks (tenant_id, campaign_id);
CREATE INDEX idx_campaign_tasks_created_by ON public.campaign_tasks (tenant_id, created_by);
-- seed: partial index on open tasks by owner and due date
CREATE INDEX idx_campaign_tasks_user_due ON public.campaign_tasks (tenant_id, created_by, due_date)
    WHERE status <> 'completed';

CREATE TRIGGER update_campaign_tasks_updated_at
    BEFORE UPDATE ON public.campaign_tasks
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.campaign_tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.campaign_tasks AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own campaign tasks" ON public.campaign_tasks
    FOR SELECT TO authenticated, service_role USING (auth.uid() = created_by);
CREATE POLICY "Users can create tasks in own campaigns" ON public.campaign_tasks
    FOR INSERT TO authenticated, service_role
    WITH CHECK (auth.uid() = created_by
                AND EXISTS (SELECT 1 FROM public.campaigns c
                            WHERE c.id = campaign_tasks.campaign_id AND c.created_by = auth.uid()));
CREATE POLICY "Users can update own campaign tasks" ON public.campaign_tasks
    FOR UPDATE TO authenticated, service_role
    USING (auth.uid() = created_by)
    WITH CHECK (auth.uid() = created_by
                AND EXISTS (SELECT 1 FROM public.campaigns c
                            WHERE c.id = campaign_tasks.campaign_id AND c.created_by = auth.uid()));
CREATE POLICY "Users can delete own campaign tasks" ON public.campaign_tasks
    FOR DELETE TO authenticated, service_role USING (auth.uid() = created_by);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.campaign_tasks TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- leads
-- ---------------------------------------------------------------------------
CREATE TABLE public.leads (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid        NOT NULL DEFAULT auth.tenant_id()
                                  REFERENCES public.tenants (id) ON DELETE CASCADE,
    created_by        uuid        NOT NULL,
    campaign_id       uuid,
    first_name        text,
    last_name         text,
    email             text,
    phone             text,
    company           text,
    job_title         text,
    source            text,
    status            text        NOT NULL DEFAULT 'new'
                                  CHECK (status IN ('new', 'contacted', 'qualified', 'converted', 'lost')),
    score             integer     NOT NULL DEFAULT 0 CHECK (score BETWEEN 0 AND 100),
    tags              text[]      NOT NULL DEFAULT '{}',
    notes             text,
    custom_fields     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    last_contacted_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT leads_created_by_fk FOREIGN KEY (tenant_id, created_by)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT leads_campaign_fk FOREIGN KEY (tenant_id, campaign_id)
        REFERENCES public.campaigns (tenant_id, id) ON DELETE SET NULL (campaign_id),
    CONSTRAINT leads_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX idx_leads_created_by ON public.leads (tenant_id, created_by, created_at DESC);
CREATE INDEX idx_leads_campaign_id ON public.leads (tenant_id, campaign_id);
CREATE INDEX idx_leads_status ON public.leads (tenant_id, status);
CREATE INDEX idx_leads_email ON public.leads (tenant_id, email);

CREATE TRIGGER update_leads_updated_at
    BEFORE UPDATE ON public.leads
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.leads ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.leads AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own leads" ON public.leads
    FOR SELECT TO authenticated, service_role USING (auth.uid() = created_by);
CREATE POLICY "Users can create own leads" ON public.leads
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = created_by);
CREATE POLICY "Users can update own leads" ON public.leads
    FOR UPDATE TO authenticated, service_role USING (auth.uid() = created_by) WITH CHECK (auth.uid() = created_by);
CREATE POLICY "Users can delete own leads" ON public.leads
    FOR DELETE TO authenticated, service_role USING (auth.uid() = created_by);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.leads TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- lead_activities (child of leads: subject via lead_id)
-- ---------------------------------------------------------------------------
CREATE TABLE public.lead_activities (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid        NOT NULL DEFAULT auth.tenant_id()
                              REFERENCES public.tenants (id) ON DELETE CASCADE,
    lead_id       uuid        NOT NULL,
    activity_type text        NOT NULL CHECK (btrim(activity_type) <> ''),  -- email_open, click, call, …
    activity_data jsonb       NOT NULL DEFAULT '{}'::jsonb,
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT lead_activities_lead_fk FOREIGN KEY (tenant_id, lead_id)
        REFERENCES public.leads (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX idx_lead_activities_lead_id ON public.lead_activities (tenant_id, lead_id, occurred_at DESC);
CREATE INDEX idx_lead_activities_type ON public.lead_activities (tenant_id, activity_type);

ALTER TABLE public.lead_activities ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.lead_activities AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view activities of own leads" ON public.lead_activities
    FOR SELECT TO authenticated, service_role
    USING (EXISTS (SELECT 1 FROM public.leads l
                   WHERE l.id = lead_activities.lead_id AND l.created_by = auth.uid()));
CREATE POLICY "Users can record activities of own leads" ON public.lead_activities
    FOR INSERT TO authenticated, service_role
    WITH CHECK (EXISTS (SELECT 1 FROM public.leads l
                        WHERE l.id = lead_activities.lead_id AND l.created_by = auth.uid()));
CREATE POLICY "Users can update activities of own leads" ON public.lead_activities
    FOR UPDATE TO authenticated, service_role
    USING (EXISTS (SELECT 1 FROM public.leads l
                   WHERE l.id = lead_activities.lead_id AND l.created_by = auth.uid()))
    WITH CHECK (EXISTS (SELECT 1 FROM public.leads l
                        WHERE l.id = lead_activities.lead_id AND l.created_by = auth.uid()));
CREATE POLICY "Users can delete activities of own leads" ON public.lead_activities
    FOR DELETE TO authenticated, service_role
    USING (EXISTS (SELECT 1 FROM public.leads l
                   WHERE l.id = lead_activities.lead_id AND l.created_by = auth.uid()));
GRANT SELECT, INSERT, UPDATE, DELETE ON public.lead_activities TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- chat_sessions / chat_messages (user ↔ AI conversations)
-- ---------------------------------------------------------------------------
CREATE TABLE public.chat_sessions (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid        NOT NULL DEFAULT auth.tenant_id()
                                REFERENCES public.tenants (id) ON DELETE CASCADE,
    user_id         uuid        NOT NULL,
    title           text,
    status          text        NOT NULL DEFAULT 'active'
                                CHECK (status IN ('active', 'archived')),
    context         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    last_message_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chat_sessions_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT chat_sessions_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX idx_chat_sessions_user_id ON public.chat_sessions (tenant_id, user_id, updated_at DESC);

CREATE TRIGGER update_chat_sessions_updated_at
    BEFORE UPDATE ON public.chat_sessions
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.chat_sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.chat_sessions AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own chat sessions" ON public.chat_sessions
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Users can create own chat sessions" ON public.chat_sessions
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own chat sessions" ON public.chat_sessions
    FOR UPDATE TO authenticated, service_role USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can delete own chat sessions" ON public.chat_sessions
    FOR DELETE TO authenticated, service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.chat_sessions TO anon, authenticated, service_role;

CREATE TABLE public.chat_messages (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid        NOT NULL DEFAULT auth.tenant_id()
                           REFERENCES public.tenants (id) ON DELETE CASCADE,
    session_id uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    role       text        NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content    text        NOT NULL,
    metadata   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chat_messages_session_fk FOREIGN KEY (tenant_id, session_id)
        REFERENCES public.chat_sessions (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT chat_messages_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT chat_messages_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX idx_chat_messages_session_id ON public.chat_messages (tenant_id, session_id, created_at);
CREATE INDEX idx_chat_messages_user_id ON public.chat_messages (tenant_id, user_id);

ALTER TABLE public.chat_messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.chat_messages AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own chat messages" ON public.chat_messages
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Users can create messages in own chat sessions" ON public.chat_messages
    FOR INSERT TO authenticated, service_role
    WITH CHECK (auth.uid() = user_id
                AND EXISTS (SELECT 1 FROM public.chat_sessions s
                            WHERE s.id = chat_messages.session_id AND s.user_id = auth.uid()));
CREATE POLICY "Users can update own chat messages" ON public.chat_messages
    FOR UPDATE TO authenticated, service_role
    USING (auth.uid() = user_id)
    WITH CHECK (auth.uid() = user_id
                AND EXISTS (SELECT 1 FROM public.chat_sessions s
                            WHERE s.id = chat_messages.session_id AND s.user_id = auth.uid()));
CREATE POLICY "Users can delete own chat messages" ON public.chat_messages
    FOR DELETE TO authenticated, service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.chat_messages TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- content_calendar
-- ---------------------------------------------------------------------------
CREATE TABLE public.content_calendar (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid        NOT NULL DEFAULT auth.tenant_id()
                               REFERENCES public.tenants (id) ON DELETE CASCADE,
    created_by     uuid        NOT NULL,
    campaign_id    uuid,
    title          text        NOT NULL CHECK (btrim(title) <> ''),
    content        text,
    content_type   text,                       -- post, article, email, video, …
    platform       text,
    scheduled_date timestamptz,
    status         text        NOT NULL DEFAULT 'draft'
                               CHECK (status IN ('draft', 'scheduled', 'published', 'failed', 'cancelled')),
    published_at   timestamptz,
    metadata       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT content_calendar_created_by_fk FOREIGN KEY (tenant_id, created_by)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT content_calendar_campaign_fk FOREIGN KEY (tenant_id, campaign_id)
        REFERENCES public.campaigns (tenant_id, id) ON DELETE SET NULL (campaign_id)
);
CREATE INDEX idx_content_calendar_created_by ON public.content_calendar (tenant_id, created_by, scheduled_date);
CREATE INDEX idx_content_calendar_campaign_id ON public.content_calendar (tenant_id, campaign_id);
CREATE INDEX idx_content_calendar_scheduled ON public.content_calendar (tenant_id, scheduled_date)
    WHERE status = 'scheduled';

CREATE TRIGGER update_content_calendar_updated_at
    BEFORE UPDATE ON public.content_calendar
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.content_calendar ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.content_calendar AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own calendar" ON public.content_calendar
    FOR SELECT TO authenticated, service_role USING (auth.uid() = created_by);
CREATE POLICY "Users can create own calendar entries" ON public.content_calendar
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = created_by);
CREATE POLICY "Users can update own calendar entries" ON public.content_calendar
    FOR UPDATE TO authenticated, service_role USING (auth.uid() = created_by) WITH CHECK (auth.uid() = created_by);
CREATE POLICY "Users can delete own calendar entries" ON public.content_calendar
    FOR DELETE TO authenticated, service_role USING (auth.uid() = created_by);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.content_calendar TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- support_tickets ("anonymous + authenticated").
-- Anyone may file a ticket: anon only without a user_id, authenticated only as
-- themselves. Users read their own tickets. The support desk (service_role)
-- works on every ticket of its tenant, including anonymous ones that have no
-- subject to act for: auth.role() = 'service_role'.
-- ---------------------------------------------------------------------------
CREATE TABLE public.support_tickets (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid        NOT NULL DEFAULT auth.tenant_id()
                            REFERENCES public.tenants (id) ON DELETE CASCADE,
    user_id     uuid,                              -- NULL = filed anonymously
    name        text,
    email       text,
    subject     text        NOT NULL CHECK (btrim(subject) <> ''),
    message     text        NOT NULL CHECK (btrim(message) <> ''),
    category    text,
    priority    text        NOT NULL DEFAULT 'medium'
                            CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    status      text        NOT NULL DEFAULT 'open'
                            CHECK (status IN ('open', 'in_progress', 'waiting', 'resolved', 'closed')),
    metadata    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    resolved_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT support_tickets_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX idx_support_tickets_user_id ON public.support_tickets (tenant_id, user_id);
CREATE INDEX idx_support_tickets_status ON public.support_tickets (tenant_id, status, created_at DESC);
CREATE INDEX idx_support_tickets_email ON public.support_tickets (tenant_id, email);

CREATE TRIGGER update_support_tickets_updated_at
    BEFORE UPDATE ON public.support_tickets
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.support_tickets ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.support_tickets AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Anyone can file an anonymous ticket" ON public.support_tickets
    FOR INSERT TO anon WITH CHECK (user_id IS NULL);
CREATE POLICY "Users can file own tickets" ON public.support_tickets
    FOR INSERT TO authenticated WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can view own tickets" ON public.support_tickets
    FOR SELECT TO authenticated USING (auth.uid() = user_id);
CREATE POLICY "Support staff manage tickets" ON public.support_tickets
    FOR ALL TO service_role
    USING (auth.role() = 'service_role') WITH CHECK (auth.role() = 'service_role');
GRANT SELECT, INSERT, UPDATE, DELETE ON public.support_tickets TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- user_preferences (1:1 per user)
-- ---------------------------------------------------------------------------
CREATE TABLE public.user_preferences (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid        NOT NULL DEFAULT auth.tenant_id()
                               REFERENCES public.tenants (id) ON DELETE CASCADE,
    user_id        uuid        NOT NULL,
    interface_mode text        NOT NULL DEFAULT 'simple' CHECK (interface_mode IN ('simple', 'advanced')),
    theme          text        NOT NULL DEFAULT 'system' CHECK (theme IN ('light', 'dark', 'system')),
    language       text        NOT NULL DEFAULT 'en',
    timezone       text,
    notifications  jsonb       NOT NULL DEFAULT '{}'::jsonb,
    preferences    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_preferences_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT user_preferences_tenant_user_key UNIQUE (tenant_id, user_id)
);

CREATE TRIGGER update_user_preferences_updated_at
    BEFORE UPDATE ON public.user_preferences
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.user_preferences ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.user_preferences AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own preferences" ON public.user_preferences
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Users can create own preferences" ON public.user_preferences
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own preferences" ON public.user_preferences
    FOR UPDATE TO authenticated, service_role USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can delete own preferences" ON public.user_preferences
    FOR DELETE TO authenticated, service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.user_preferences TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- ai_model_configs: service-managed, no personal data (no subject column).
-- Authenticated users read the tenant's list; only service_role writes it.
-- ---------------------------------------------------------------------------
CREATE TABLE public.ai_model_configs (
    id             uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid          NOT NULL DEFAULT auth.tenant_id()
                                 REFERENCES public.tenants (id) ON DELETE CASCADE,
    provider       text          NOT NULL CHECK (btrim(provider) <> ''),  -- openai, anthropic, google, mistral
    model_name     text          NOT NULL CHECK (btrim(model_name) <> ''),
    display_name   text,
    model_type     text          NOT NULL CHECK (model_type IN ('flagship', 'fast', 'reasoning', 'legacy')),
    is_active      boolean       NOT NULL DEFAULT true,
    is_default     boolean       NOT NULL DEFAULT false,
    capabilities   jsonb         NOT NULL DEFAULT '{}'::jsonb,  -- vision, function_calling, …
    pricing        jsonb         NOT NULL DEFAULT '{}'::jsonb,  -- input/output per token
    context_window integer       CHECK (context_window > 0),
    metadata       jsonb         NOT NULL DEFAULT '{}'::jsonb,
    deprecated_at  timestamptz,
    created_at     timestamptz   NOT NULL DEFAULT now(),
    updated_at     timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT ai_model_configs_tenant_provider_model_key UNIQUE (tenant_id, provider, model_name)
);
-- at most one default per provider and model type (seed: get_default_model(provider, type))
CREATE UNIQUE INDEX ai_model_configs_one_default_idx
    ON public.ai_model_configs (tenant_id, provider, model_type) WHERE is_default;
CREATE INDEX idx_ai_model_configs_active ON public.ai_model_configs (tenant_id, provider, is_active);

CREATE TRIGGER update_ai_model_configs_updated_at
    BEFORE UPDATE ON public.ai_model_configs
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.ai_model_configs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.ai_model_configs AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Authenticated users can read model configs" ON public.ai_model_configs
    FOR SELECT TO authenticated USING (true);
CREATE POLICY "Service role manages model configs" ON public.ai_model_configs
    FOR ALL TO service_role
    USING (auth.role() = 'service_role') WITH CHECK (auth.role() = 'service_role');
GRANT SELECT, INSERT, UPDATE, DELETE ON public.ai_model_configs TO anon, authenticated, service_role;
