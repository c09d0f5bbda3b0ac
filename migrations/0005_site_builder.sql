-- 0005 AI site builder (seed 002): profiles, projects, sitemaps, wireframes,
-- style_guides, builder_sessions, version_history and their functions.
--
-- Deviations from the seed, and why:
--   * uuid_generate_v4() → gen_random_uuid() (no uuid-ossp);
--   * profiles is only named in the seed's relationship list; defined here the
--     Supabase way (id = auth.users.id);
--   * the seed gives policies only for projects, builder_sessions, version_history;
--     sitemaps/wireframes/style_guides are reached through their parent project
--     (readable when the project is, writable by the project's owner);
--   * projects, version_history get the commands the seed left out (delete; insert)
--     so users and the eraser (service_role acting for the subject) can do them;
--   * builder_sessions.session_token is unique per tenant, not globally (a global
--     unique index would let one tenant probe another's tokens);
--   * create_version_history / get_session_analytics were SECURITY DEFINER taking
--     a user id: anyone could write or read any user's history across tenants.
--     They are SECURITY INVOKER here, so RLS scopes them. cleanup_old_sessions is
--     a maintenance job for the owner role only (no EXECUTE for request roles);
--   * ALTER PUBLICATION supabase_realtime is Supabase-specific and left out.

-- ---------------------------------------------------------------------------
-- profiles
-- ---------------------------------------------------------------------------
CREATE TABLE public.profiles (
    id          uuid        PRIMARY KEY,           -- = auth.users.id
    tenant_id   uuid        NOT NULL DEFAULT auth.tenant_id()
                            REFERENCES public.tenants (id) ON DELETE CASCADE,
    email       text,
    full_name   text,
    avatar_url  text,
    website     text,
    bio         text,
    preferences jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT profiles_user_fk FOREIGN KEY (tenant_id, id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT profiles_tenant_id_id_key UNIQUE (tenant_id, id)
);

CREATE TRIGGER update_profiles_updated_at
    BEFORE UPDATE ON public.profiles
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.profiles AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view own profile" ON public.profiles
    FOR SELECT TO authenticated, service_role USING (auth.uid() = id);
CREATE POLICY "Users can insert own profile" ON public.profiles
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = id);
CREATE POLICY "Users can update own profile" ON public.profiles
    FOR UPDATE TO authenticated, service_role USING (auth.uid() = id) WITH CHECK (auth.uid() = id);
CREATE POLICY "Users can delete own profile" ON public.profiles
    FOR DELETE TO authenticated, service_role USING (auth.uid() = id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.profiles TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- projects
-- ---------------------------------------------------------------------------
CREATE TABLE public.projects (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid        NOT NULL DEFAULT auth.tenant_id()
                              REFERENCES public.tenants (id) ON DELETE CASCADE,
    created_at    timestamptz DEFAULT now(),
    updated_at    timestamptz DEFAULT now(),
    user_id       uuid        NOT NULL,
    name          text        NOT NULL,
    description   text,
    type          text        NOT NULL,            -- 'website', 'landing-page', 'portfolio', …
    status        text        NOT NULL DEFAULT 'draft', -- 'draft', 'active', 'archived'
    data          jsonb       DEFAULT '{}'::jsonb,
    settings      jsonb       DEFAULT '{}'::jsonb,
    collaborators uuid[]      DEFAULT '{}',
    is_public     boolean     NOT NULL DEFAULT false,  -- seed: DEFAULT FALSE (typed non-null in its TS)
    CONSTRAINT projects_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT projects_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX idx_projects_user_id_status ON public.projects (tenant_id, user_id, status);
CREATE INDEX idx_projects_updated_at ON public.projects (tenant_id, updated_at);
CREATE INDEX idx_projects_is_public ON public.projects (tenant_id, is_public);

CREATE TRIGGER update_projects_updated_at
    BEFORE UPDATE ON public.projects
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.projects ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.projects AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
-- Seed policies (no TO clause in the seed = public: anon may read public projects).
CREATE POLICY "Users can view their projects" ON public.projects
    FOR SELECT TO public USING (auth.uid() = user_id OR is_public = true);
CREATE POLICY "Users can insert their projects" ON public.projects
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update their projects" ON public.projects
    FOR UPDATE TO authenticated, service_role USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can delete their projects" ON public.projects
    FOR DELETE TO authenticated, service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.projects TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- sitemaps (child of projects)
-- ---------------------------------------------------------------------------
CREATE TABLE public.sitemaps (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid        NOT NULL DEFAULT auth.tenant_id()
                            REFERENCES public.tenants (id) ON DELETE CASCADE,
    created_at  timestamptz DEFAULT now(),
    updated_at  timestamptz DEFAULT now(),
    project_id  uuid        NOT NULL,
    title       text        NOT NULL,
    description text,
    pages       jsonb       DEFAULT '{}'::jsonb,
    metadata    jsonb       DEFAULT '{}'::jsonb,
    version     integer     NOT NULL DEFAULT 1,
    CONSTRAINT sitemaps_project_fk FOREIGN KEY (tenant_id, project_id)
        REFERENCES public.projects (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT sitemaps_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX idx_sitemaps_project_id_updated ON public.sitemaps (tenant_id, project_id, updated_at);
CREATE INDEX idx_sitemaps_version ON public.sitemaps (tenant_id, project_id, version);

CREATE TRIGGER update_sitemaps_updated_at
    BEFORE UPDATE ON public.sitemaps
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.sitemaps ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.sitemaps AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view sitemaps of visible projects" ON public.sitemaps
    FOR SELECT TO public
    USING (EXISTS (SELECT 1 FROM public.projects p
                   WHERE p.id = sitemaps.project_id AND (p.user_id = auth.uid() OR p.is_public = true)));
CREATE POLICY "Users can insert sitemaps of their projects" ON public.sitemaps
    FOR INSERT TO authenticated, service_role
    WITH CHECK (EXISTS (SELECT 1 FROM public.projects p
                        WHERE p.id = sitemaps.project_id AND p.user_id = auth.uid()));
CREATE POLICY "Users can update sitemaps of their projects" ON public.sitemaps
    FOR UPDATE TO authenticated, service_role
    USING (EXISTS (SELECT 1 FROM public.projects p
                   WHERE p.id = sitemaps.project_id AND p.user_id = auth.uid()))
    WITH CHECK (EXISTS (SELECT 1 FROM public.projects p
                        WHERE p.id = sitemaps.project_id AND p.user_id = auth.uid()));
CREATE POLICY "Users can delete sitemaps of their projects" ON public.sitemaps
    FOR DELETE TO authenticated, service_role
    USING (EXISTS (SELECT 1 FROM public.projects p
                   WHERE p.id = sitemaps.project_id AND p.user_id = auth.uid()));
GRANT SELECT, INSERT, UPDATE, DELETE ON public.sitemaps TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- wireframes (child of sitemaps → projects)
-- ---------------------------------------------------------------------------
CREATE TABLE public.wireframes (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid        NOT NULL DEFAULT auth.tenant_id()
                            REFERENCES public.tenants (id) ON DELETE CASCADE,
    created_at  timestamptz DEFAULT now(),
    updated_at  timestamptz DEFAULT now(),
    sitemap_id  uuid        NOT NULL,
    title       text        NOT NULL,
    description text,
    layout      jsonb       DEFAULT '{}'::jsonb,
    style_guide jsonb       DEFAULT '{}'::jsonb,
    components  text[]      DEFAULT '{}',
    version     integer     NOT NULL DEFAULT 1,
    CONSTRAINT wireframes_sitemap_fk FOREIGN KEY (tenant_id, sitemap_id)
        REFERENCES public.sitemaps (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT wireframes_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX idx_wireframes_sitemap_id_updated ON public.wireframes (tenant_id, sitemap_id, updated_at);
CREATE INDEX idx_wireframes_version ON public.wireframes (tenant_id, sitemap_id, version);

CREATE TRIGGER update_wireframes_updated_at
    BEFORE UPDATE ON public.wireframes
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.wireframes ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.wireframes AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view wireframes of visible projects" ON public.wireframes
    FOR SELECT TO public
    USING (EXISTS (SELECT 1 FROM public.sitemaps s
                   WHERE s.id = wireframes.sitemap_id
                     AND EXISTS (SELECT 1 FROM public.projects p
                                 WHERE p.id = s.project_id AND (p.user_id = auth.uid() OR p.is_public = true))));
CREATE POLICY "Users can insert wireframes of their projects" ON public.wireframes
    FOR INSERT TO authenticated, service_role
    WITH CHECK (EXISTS (SELECT 1 FROM public.sitemaps s
                        WHERE s.id = wireframes.sitemap_id
                          AND EXISTS (SELECT 1 FROM public.projects p
                                      WHERE p.id = s.project_id AND p.user_id = auth.uid())));
CREATE POLICY "Users can update wireframes of their projects" ON public.wireframes
    FOR UPDATE TO authenticated, service_role
    USING (EXISTS (SELECT 1 FROM public.sitemaps s
                   WHERE s.id = wireframes.sitemap_id
                     AND EXISTS (SELECT 1 FROM public.projects p
                                 WHERE p.id = s.project_id AND p.user_id = auth.uid())))
    WITH CHECK (EXISTS (SELECT 1 FROM public.sitemaps s
                        WHERE s.id = wireframes.sitemap_id
                          AND EXISTS (SELECT 1 FROM public.projects p
                                      WHERE p.id = s.project_id AND p.user_id = auth.uid())));
CREATE POLICY "Users can delete wireframes of their projects" ON public.wireframes
    FOR DELETE TO authenticated, service_role
    USING (EXISTS (SELECT 1 FROM public.sitemaps s
                   WHERE s.id = wireframes.sitemap_id
                     AND EXISTS (SELECT 1 FROM public.projects p
                                 WHERE p.id = s.project_id AND p.user_id = auth.uid())));
GRANT SELECT, INSERT, UPDATE, DELETE ON public.wireframes TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- style_guides (child of wireframes → sitemaps → projects)
-- ---------------------------------------------------------------------------
CREATE TABLE public.style_guides (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid        NOT NULL DEFAULT auth.tenant_id()
                             REFERENCES public.tenants (id) ON DELETE CASCADE,
    created_at   timestamptz DEFAULT now(),
    updated_at   timestamptz DEFAULT now(),
    wireframe_id uuid        NOT NULL,
    title        text        NOT NULL,
    description  text,
    colors       jsonb       DEFAULT '{}'::jsonb,
    typography   jsonb       DEFAULT '{}'::jsonb,
    spacing      jsonb       DEFAULT '{}'::jsonb,
    components   jsonb       DEFAULT '{}'::jsonb,
    grid         jsonb       DEFAULT '{}'::jsonb,
    breakpoints  jsonb       DEFAULT '{}'::jsonb,
    version      integer     NOT NULL DEFAULT 1,
    CONSTRAINT style_guides_wireframe_fk FOREIGN KEY (tenant_id, wireframe_id)
        REFERENCES public.wireframes (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX idx_style_guides_wireframe_id_updated ON public.style_guides (tenant_id, wireframe_id, updated_at);
CREATE INDEX idx_style_guides_version ON public.style_guides (tenant_id, wireframe_id, version);

CREATE TRIGGER update_style_guides_updated_at
    BEFORE UPDATE ON public.style_guides
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

ALTER TABLE public.style_guides ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.style_guides AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view style guides of visible projects" ON public.style_guides
    FOR SELECT TO public
    USING (EXISTS (SELECT 1 FROM public.wireframes w
                   WHERE w.id = style_guides.wireframe_id
                     AND EXISTS (SELECT 1 FROM public.sitemaps s
                                 WHERE s.id = w.sitemap_id
                                   AND EXISTS (SELECT 1 FROM public.projects p
                                               WHERE p.id = s.project_id
                                                 AND (p.user_id = auth.uid() OR p.is_public = true)))));
CREATE POLICY "Users can insert style guides of their projects" ON public.style_guides
    FOR INSERT TO authenticated, service_role
    WITH CHECK (EXISTS (SELECT 1 FROM public.wireframes w
                        WHERE w.id = style_guides.wireframe_id
                          AND EXISTS (SELECT 1 FROM public.sitemaps s
                                      WHERE s.id = w.sitemap_id
                                        AND EXISTS (SELECT 1 FROM public.projects p
                                                    WHERE p.id = s.project_id AND p.user_id = auth.uid()))));
CREATE POLICY "Users can update style guides of their projects" ON public.style_guides
    FOR UPDATE TO authenticated, service_role
    USING (EXISTS (SELECT 1 FROM public.wireframes w
                   WHERE w.id = style_guides.wireframe_id
                     AND EXISTS (SELECT 1 FROM public.sitemaps s
                                 WHERE s.id = w.sitemap_id
                                   AND EXISTS (SELECT 1 FROM public.projects p
                                               WHERE p.id = s.project_id AND p.user_id = auth.uid()))))
    WITH CHECK (EXISTS (SELECT 1 FROM public.wireframes w
                        WHERE w.id = style_guides.wireframe_id
                          AND EXISTS (SELECT 1 FROM public.sitemaps s
                                      WHERE s.id = w.sitemap_id
                                        AND EXISTS (SELECT 1 FROM public.projects p
                                                    WHERE p.id = s.project_id AND p.user_id = auth.uid()))));
CREATE POLICY "Users can delete style guides of their projects" ON public.style_guides
    FOR DELETE TO authenticated, service_role
    USING (EXISTS (SELECT 1 FROM public.wireframes w
                   WHERE w.id = style_guides.wireframe_id
                     AND EXISTS (SELECT 1 FROM public.sitemaps s
                                 WHERE s.id = w.sitemap_id
                                   AND EXISTS (SELECT 1 FROM public.projects p
                                               WHERE p.id = s.project_id AND p.user_id = auth.uid()))));
GRANT SELECT, INSERT, UPDATE, DELETE ON public.style_guides TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- builder_sessions
-- ---------------------------------------------------------------------------
CREATE TABLE public.builder_sessions (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid        NOT NULL DEFAULT auth.tenant_id()
                              REFERENCES public.tenants (id) ON DELETE CASCADE,
    created_at    timestamptz DEFAULT now(),
    updated_at    timestamptz DEFAULT now(),
    user_id       uuid        NOT NULL,
    project_id    uuid,
    session_token text        NOT NULL,
    status        text        NOT NULL DEFAULT 'active'
                              CHECK (status IN ('active', 'paused', 'completed', 'cancelled')),
    current_step  text        NOT NULL DEFAULT 'initializing',
    step_data     jsonb       DEFAULT '{}'::jsonb,
    progress      jsonb       DEFAULT '{}'::jsonb,
    metadata      jsonb       DEFAULT '{}'::jsonb,
    started_at    timestamptz DEFAULT now(),
    ended_at      timestamptz,
    duration      integer,                          -- seconds
    ip_address    inet,
    user_agent    text,
    CONSTRAINT builder_sessions_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT builder_sessions_project_fk FOREIGN KEY (tenant_id, project_id)
        REFERENCES public.projects (tenant_id, id) ON DELETE SET NULL (project_id),
    CONSTRAINT builder_sessions_tenant_session_token_key UNIQUE (tenant_id, session_token)
);
CREATE INDEX idx_builder_sessions_user_id ON public.builder_sessions (tenant_id, user_id);
CREATE INDEX idx_builder_sessions_status ON public.builder_sessions (tenant_id, status);
-- idx_builder_sessions_session_token: served by the unique (tenant_id, session_token)
CREATE INDEX idx_builder_sessions_project_id ON public.builder_sessions (tenant_id, project_id);

CREATE TRIGGER update_builder_sessions_updated_at
    BEFORE UPDATE ON public.builder_sessions
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

-- Seed: update session duration automatically.
CREATE FUNCTION public.update_session_duration() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = public, pg_temp
AS $$
BEGIN
    IF NEW.ended_at IS NOT NULL AND OLD.ended_at IS NULL THEN
        NEW.duration = EXTRACT(EPOCH FROM (NEW.ended_at - NEW.started_at))::integer;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER update_builder_sessions_duration
    BEFORE UPDATE ON public.builder_sessions
    FOR EACH ROW EXECUTE FUNCTION public.update_session_duration();

ALTER TABLE public.builder_sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.builder_sessions AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
-- Seed: FOR ALL USING (auth.uid() = user_id); WITH CHECK added.
CREATE POLICY "Users can manage their sessions" ON public.builder_sessions
    FOR ALL TO authenticated, service_role
    USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.builder_sessions TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- version_history (immutable: no UPDATE policy)
-- ---------------------------------------------------------------------------
CREATE TABLE public.version_history (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid        NOT NULL DEFAULT auth.tenant_id()
                               REFERENCES public.tenants (id) ON DELETE CASCADE,
    created_at     timestamptz DEFAULT now(),
    entity_type    text        NOT NULL,  -- 'projects', 'sitemaps', 'wireframes', 'style_guides'
    entity_id      uuid        NOT NULL,
    version_number integer     NOT NULL,
    user_id        uuid        NOT NULL,
    changes        jsonb       DEFAULT '{}'::jsonb,
    data           jsonb       DEFAULT '{}'::jsonb,
    message        text,
    is_major       boolean     DEFAULT false,
    CONSTRAINT version_history_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX idx_version_history_entity ON public.version_history (tenant_id, entity_type, entity_id, version_number);
CREATE INDEX idx_version_history_user_id ON public.version_history (tenant_id, user_id);

ALTER TABLE public.version_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.version_history AS RESTRICTIVE FOR ALL TO public
    USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
CREATE POLICY "Users can view their version history" ON public.version_history
    FOR SELECT TO authenticated, service_role USING (auth.uid() = user_id);
CREATE POLICY "Users can create their version history" ON public.version_history
    FOR INSERT TO authenticated, service_role WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can delete their version history" ON public.version_history
    FOR DELETE TO authenticated, service_role USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.version_history TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- Functions (seed "Utility Functions")
-- ---------------------------------------------------------------------------
-- Next version number of an entity (over the caller's visible history).
CREATE FUNCTION public.get_next_version(entity_type_param text, entity_id_param uuid) RETURNS integer
    LANGUAGE sql STABLE
    SECURITY INVOKER
    SET search_path = public, pg_temp
AS $$
    SELECT coalesce(max(vh.version_number), 0) + 1
      FROM public.version_history vh
     WHERE vh.entity_type = entity_type_param
       AND vh.entity_id = entity_id_param;
$$;

-- Create a version history entry (SECURITY INVOKER, see header).
CREATE FUNCTION public.create_version_history(
    entity_type_param text,
    entity_id_param   uuid,
    user_id_param     uuid,
    changes_param     jsonb   DEFAULT '{}'::jsonb,
    data_param        jsonb   DEFAULT '{}'::jsonb,
    message_param     text    DEFAULT NULL,
    is_major_param    boolean DEFAULT false
) RETURNS uuid
    LANGUAGE plpgsql
    SECURITY INVOKER
    SET search_path = public, pg_temp
AS $$
DECLARE
    next_version integer;
    version_id   uuid;
BEGIN
    next_version := public.get_next_version(entity_type_param, entity_id_param);

    INSERT INTO public.version_history (
        entity_type, entity_id, version_number, user_id,
        changes, data, message, is_major
    ) VALUES (
        entity_type_param, entity_id_param, next_version, user_id_param,
        changes_param, data_param, message_param, is_major_param
    ) RETURNING id INTO version_id;

    RETURN version_id;
END;
$$;

-- Session analytics for a user (SECURITY INVOKER: a caller sees only rows RLS
-- lets it see). most_common_step is the mode over the period (the seed's
-- subquery returned an arbitrary active step).
CREATE FUNCTION public.get_session_analytics(user_id_param uuid, days_param integer DEFAULT 30)
    RETURNS TABLE (
        total_sessions     bigint,
        avg_duration       numeric,
        completed_sessions bigint,
        most_common_step   text,
        sessions_per_day   numeric
    )
    LANGUAGE sql STABLE
    SECURITY INVOKER
    SET search_path = public, pg_temp
AS $$
    SELECT count(*),
           avg(bs.duration),
           count(*) FILTER (WHERE bs.status = 'completed'),
           mode() WITHIN GROUP (ORDER BY bs.current_step),
           count(*) / nullif(days_param, 0)::numeric
      FROM public.builder_sessions bs
     WHERE bs.user_id = user_id_param
       AND bs.created_at >= now() - make_interval(days => days_param);
$$;

-- Clean up old finished sessions: a maintenance job run by the owner role across
-- all tenants (retention proper is the gateway's `retention run`).
CREATE FUNCTION public.cleanup_old_sessions() RETURNS integer
    LANGUAGE plpgsql
    SECURITY INVOKER
    SET search_path = public, pg_temp
AS $$
DECLARE
    deleted_count integer;
BEGIN
    DELETE FROM public.builder_sessions
     WHERE created_at < now() - interval '30 days'
       AND status IN ('completed', 'cancelled');
    GET DIAGNOSTICS deleted_count = ROW_COUNT;
    RETURN deleted_count;
END;
$$;

REVOKE EXECUTE ON FUNCTION public.cleanup_old_sessions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    public.get_next_version(text, uuid),
    public.create_version_history(text, uuid, uuid, jsonb, jsonb, text, boolean),
    public.get_session_analytics(uuid, integer)
    TO authenticated, service_role;
