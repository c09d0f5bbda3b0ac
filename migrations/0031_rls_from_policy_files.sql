-- Row-level security generated from the policy files. Do not edit by hand.

-- public.ai_assistant_sessions (ai_assistant_sessions.yaml)
ALTER TABLE "public"."ai_assistant_sessions" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'ai_assistant_sessions' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Session holders can view their anonymous session', 'Anonymous users can create their session', 'Anonymous users can update their session', 'Users can view own sessions', 'Users can create own sessions', 'Users can update own sessions', 'Users can delete own sessions']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."ai_assistant_sessions"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."ai_assistant_sessions";
CREATE POLICY "tenant_isolation" ON "public"."ai_assistant_sessions" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."ai_assistant_sessions";
CREATE POLICY "privacy_worker" ON "public"."ai_assistant_sessions" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Session holders can view their anonymous session" ON "public"."ai_assistant_sessions";
CREATE POLICY "Session holders can view their anonymous session" ON "public"."ai_assistant_sessions" AS PERMISSIVE FOR SELECT TO "anon", "authenticated" USING ("user_id" IS NULL AND "session_id" = auth.jwt() ->> 'session_id');
DROP POLICY IF EXISTS "Anonymous users can create their session" ON "public"."ai_assistant_sessions";
CREATE POLICY "Anonymous users can create their session" ON "public"."ai_assistant_sessions" AS PERMISSIVE FOR INSERT TO "anon" WITH CHECK ("user_id" IS NULL AND "session_id" = auth.jwt() ->> 'session_id');
DROP POLICY IF EXISTS "Anonymous users can update their session" ON "public"."ai_assistant_sessions";
CREATE POLICY "Anonymous users can update their session" ON "public"."ai_assistant_sessions" AS PERMISSIVE FOR UPDATE TO "anon" USING ("user_id" IS NULL AND "session_id" = auth.jwt() ->> 'session_id') WITH CHECK ("user_id" IS NULL AND "session_id" = auth.jwt() ->> 'session_id');
DROP POLICY IF EXISTS "Users can view own sessions" ON "public"."ai_assistant_sessions";
CREATE POLICY "Users can view own sessions" ON "public"."ai_assistant_sessions" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can create own sessions" ON "public"."ai_assistant_sessions";
CREATE POLICY "Users can create own sessions" ON "public"."ai_assistant_sessions" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can update own sessions" ON "public"."ai_assistant_sessions";
CREATE POLICY "Users can update own sessions" ON "public"."ai_assistant_sessions" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "user_id" OR "user_id" IS NULL AND "session_id" = auth.jwt() ->> 'session_id') WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can delete own sessions" ON "public"."ai_assistant_sessions";
CREATE POLICY "Users can delete own sessions" ON "public"."ai_assistant_sessions" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."ai_assistant_sessions" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."ai_assistant_sessions" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."ai_assistant_sessions" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."ai_assistant_sessions" TO "privacy_worker";

-- public.ai_model_configs (ai_model_configs.yaml)
ALTER TABLE "public"."ai_model_configs" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'ai_model_configs' AND policyname <> ALL (ARRAY['tenant_isolation', 'Authenticated users can read model configs', 'Service role manages model configs']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."ai_model_configs"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."ai_model_configs";
CREATE POLICY "tenant_isolation" ON "public"."ai_model_configs" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "Authenticated users can read model configs" ON "public"."ai_model_configs";
CREATE POLICY "Authenticated users can read model configs" ON "public"."ai_model_configs" AS PERMISSIVE FOR SELECT TO "authenticated" USING (true);
DROP POLICY IF EXISTS "Service role manages model configs" ON "public"."ai_model_configs";
CREATE POLICY "Service role manages model configs" ON "public"."ai_model_configs" AS PERMISSIVE FOR ALL TO "service_role" USING (auth.role() = 'service_role') WITH CHECK (auth.role() = 'service_role');
REVOKE ALL ON "public"."ai_model_configs" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."ai_model_configs" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."ai_model_configs" TO "anon", "authenticated", "service_role";

-- public.ai_threads (ai_threads.yaml)
ALTER TABLE "public"."ai_threads" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'ai_threads' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own threads', 'Users can create own threads', 'Users can update own threads', 'Users can delete own threads']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."ai_threads"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."ai_threads";
CREATE POLICY "tenant_isolation" ON "public"."ai_threads" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."ai_threads";
CREATE POLICY "privacy_worker" ON "public"."ai_threads" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own threads" ON "public"."ai_threads";
CREATE POLICY "Users can view own threads" ON "public"."ai_threads" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can create own threads" ON "public"."ai_threads";
CREATE POLICY "Users can create own threads" ON "public"."ai_threads" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can update own threads" ON "public"."ai_threads";
CREATE POLICY "Users can update own threads" ON "public"."ai_threads" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "user_id") WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can delete own threads" ON "public"."ai_threads";
CREATE POLICY "Users can delete own threads" ON "public"."ai_threads" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."ai_threads" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."ai_threads" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."ai_threads" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."ai_threads" TO "privacy_worker";

-- public.analytics (analytics.yaml)
ALTER TABLE "public"."analytics" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'analytics' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Anonymous users can record session events', 'Users can view own events', 'Users can record own events', 'Service role updates subject events', 'Service role deletes subject events']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."analytics"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."analytics";
CREATE POLICY "tenant_isolation" ON "public"."analytics" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."analytics";
CREATE POLICY "privacy_worker" ON "public"."analytics" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Anonymous users can record session events" ON "public"."analytics";
CREATE POLICY "Anonymous users can record session events" ON "public"."analytics" AS PERMISSIVE FOR INSERT TO "anon" WITH CHECK ("user_id" IS NULL AND "session_id" = auth.jwt() ->> 'session_id');
DROP POLICY IF EXISTS "Users can view own events" ON "public"."analytics";
CREATE POLICY "Users can view own events" ON "public"."analytics" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can record own events" ON "public"."analytics";
CREATE POLICY "Users can record own events" ON "public"."analytics" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Service role updates subject events" ON "public"."analytics";
CREATE POLICY "Service role updates subject events" ON "public"."analytics" AS PERMISSIVE FOR UPDATE TO "service_role" USING (auth.uid() = "user_id") WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Service role deletes subject events" ON "public"."analytics";
CREATE POLICY "Service role deletes subject events" ON "public"."analytics" AS PERMISSIVE FOR DELETE TO "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."analytics" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."analytics" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."analytics" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."analytics" TO "privacy_worker";

-- public.brands (brands.yaml)
ALTER TABLE "public"."brands" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'brands' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own brands', 'Users can create own brands', 'Users can update own brands', 'Users can delete own brands']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."brands"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."brands";
CREATE POLICY "tenant_isolation" ON "public"."brands" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."brands";
CREATE POLICY "privacy_worker" ON "public"."brands" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own brands" ON "public"."brands";
CREATE POLICY "Users can view own brands" ON "public"."brands" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can create own brands" ON "public"."brands";
CREATE POLICY "Users can create own brands" ON "public"."brands" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can update own brands" ON "public"."brands";
CREATE POLICY "Users can update own brands" ON "public"."brands" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "user_id") WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can delete own brands" ON "public"."brands";
CREATE POLICY "Users can delete own brands" ON "public"."brands" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."brands" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."brands" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."brands" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."brands" TO "privacy_worker";

-- public.builder_sessions (builder_sessions.yaml)
ALTER TABLE "public"."builder_sessions" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'builder_sessions' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can manage their sessions']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."builder_sessions"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."builder_sessions";
CREATE POLICY "tenant_isolation" ON "public"."builder_sessions" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."builder_sessions";
CREATE POLICY "privacy_worker" ON "public"."builder_sessions" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can manage their sessions" ON "public"."builder_sessions";
CREATE POLICY "Users can manage their sessions" ON "public"."builder_sessions" AS PERMISSIVE FOR ALL TO "authenticated", "service_role" USING (auth.uid() = "user_id") WITH CHECK (auth.uid() = "user_id");
REVOKE ALL ON "public"."builder_sessions" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."builder_sessions" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."builder_sessions" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."builder_sessions" TO "privacy_worker";

-- public.campaign_tasks (campaign_tasks.yaml)
ALTER TABLE "public"."campaign_tasks" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'campaign_tasks' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own campaign tasks', 'Users can create tasks in own campaigns', 'Users can update own campaign tasks', 'Users can delete own campaign tasks']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."campaign_tasks"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."campaign_tasks";
CREATE POLICY "tenant_isolation" ON "public"."campaign_tasks" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."campaign_tasks";
CREATE POLICY "privacy_worker" ON "public"."campaign_tasks" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own campaign tasks" ON "public"."campaign_tasks";
CREATE POLICY "Users can view own campaign tasks" ON "public"."campaign_tasks" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "created_by");
DROP POLICY IF EXISTS "Users can create tasks in own campaigns" ON "public"."campaign_tasks";
CREATE POLICY "Users can create tasks in own campaigns" ON "public"."campaign_tasks" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "created_by" AND EXISTS (SELECT 1 FROM "public"."campaigns" "c" WHERE "c"."id" = "campaign_tasks"."campaign_id" AND "c"."created_by" = auth.uid()));
DROP POLICY IF EXISTS "Users can update own campaign tasks" ON "public"."campaign_tasks";
CREATE POLICY "Users can update own campaign tasks" ON "public"."campaign_tasks" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "created_by") WITH CHECK (auth.uid() = "created_by" AND EXISTS (SELECT 1 FROM "public"."campaigns" "c" WHERE "c"."id" = "campaign_tasks"."campaign_id" AND "c"."created_by" = auth.uid()));
DROP POLICY IF EXISTS "Users can delete own campaign tasks" ON "public"."campaign_tasks";
CREATE POLICY "Users can delete own campaign tasks" ON "public"."campaign_tasks" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "created_by");
REVOKE ALL ON "public"."campaign_tasks" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."campaign_tasks" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."campaign_tasks" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."campaign_tasks" TO "privacy_worker";

-- public.campaigns (campaigns.yaml)
ALTER TABLE "public"."campaigns" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'campaigns' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own campaigns', 'Users can create own campaigns', 'Users can update own campaigns', 'Users can delete own campaigns']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."campaigns"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."campaigns";
CREATE POLICY "tenant_isolation" ON "public"."campaigns" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."campaigns";
CREATE POLICY "privacy_worker" ON "public"."campaigns" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own campaigns" ON "public"."campaigns";
CREATE POLICY "Users can view own campaigns" ON "public"."campaigns" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "created_by");
DROP POLICY IF EXISTS "Users can create own campaigns" ON "public"."campaigns";
CREATE POLICY "Users can create own campaigns" ON "public"."campaigns" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "created_by");
DROP POLICY IF EXISTS "Users can update own campaigns" ON "public"."campaigns";
CREATE POLICY "Users can update own campaigns" ON "public"."campaigns" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "created_by") WITH CHECK (auth.uid() = "created_by");
DROP POLICY IF EXISTS "Users can delete own campaigns" ON "public"."campaigns";
CREATE POLICY "Users can delete own campaigns" ON "public"."campaigns" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "created_by");
REVOKE ALL ON "public"."campaigns" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."campaigns" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."campaigns" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."campaigns" TO "privacy_worker";

-- public.chat_messages (chat_messages.yaml)
ALTER TABLE "public"."chat_messages" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'chat_messages' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own chat messages', 'Users can create messages in own chat sessions', 'Users can update own chat messages', 'Users can delete own chat messages']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."chat_messages"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."chat_messages";
CREATE POLICY "tenant_isolation" ON "public"."chat_messages" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."chat_messages";
CREATE POLICY "privacy_worker" ON "public"."chat_messages" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own chat messages" ON "public"."chat_messages";
CREATE POLICY "Users can view own chat messages" ON "public"."chat_messages" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can create messages in own chat sessions" ON "public"."chat_messages";
CREATE POLICY "Users can create messages in own chat sessions" ON "public"."chat_messages" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "user_id" AND EXISTS (SELECT 1 FROM "public"."chat_sessions" "s" WHERE "s"."id" = "chat_messages"."session_id" AND "s"."user_id" = auth.uid()));
DROP POLICY IF EXISTS "Users can update own chat messages" ON "public"."chat_messages";
CREATE POLICY "Users can update own chat messages" ON "public"."chat_messages" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "user_id") WITH CHECK (auth.uid() = "user_id" AND EXISTS (SELECT 1 FROM "public"."chat_sessions" "s" WHERE "s"."id" = "chat_messages"."session_id" AND "s"."user_id" = auth.uid()));
DROP POLICY IF EXISTS "Users can delete own chat messages" ON "public"."chat_messages";
CREATE POLICY "Users can delete own chat messages" ON "public"."chat_messages" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."chat_messages" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."chat_messages" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."chat_messages" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."chat_messages" TO "privacy_worker";

-- public.chat_sessions (chat_sessions.yaml)
ALTER TABLE "public"."chat_sessions" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'chat_sessions' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own chat sessions', 'Users can create own chat sessions', 'Users can update own chat sessions', 'Users can delete own chat sessions']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."chat_sessions"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."chat_sessions";
CREATE POLICY "tenant_isolation" ON "public"."chat_sessions" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."chat_sessions";
CREATE POLICY "privacy_worker" ON "public"."chat_sessions" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own chat sessions" ON "public"."chat_sessions";
CREATE POLICY "Users can view own chat sessions" ON "public"."chat_sessions" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can create own chat sessions" ON "public"."chat_sessions";
CREATE POLICY "Users can create own chat sessions" ON "public"."chat_sessions" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can update own chat sessions" ON "public"."chat_sessions";
CREATE POLICY "Users can update own chat sessions" ON "public"."chat_sessions" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "user_id") WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can delete own chat sessions" ON "public"."chat_sessions";
CREATE POLICY "Users can delete own chat sessions" ON "public"."chat_sessions" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."chat_sessions" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."chat_sessions" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."chat_sessions" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."chat_sessions" TO "privacy_worker";

-- public.content_calendar (content_calendar.yaml)
ALTER TABLE "public"."content_calendar" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'content_calendar' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own calendar', 'Users can create own calendar entries', 'Users can update own calendar entries', 'Users can delete own calendar entries']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."content_calendar"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."content_calendar";
CREATE POLICY "tenant_isolation" ON "public"."content_calendar" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."content_calendar";
CREATE POLICY "privacy_worker" ON "public"."content_calendar" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own calendar" ON "public"."content_calendar";
CREATE POLICY "Users can view own calendar" ON "public"."content_calendar" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "created_by");
DROP POLICY IF EXISTS "Users can create own calendar entries" ON "public"."content_calendar";
CREATE POLICY "Users can create own calendar entries" ON "public"."content_calendar" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "created_by");
DROP POLICY IF EXISTS "Users can update own calendar entries" ON "public"."content_calendar";
CREATE POLICY "Users can update own calendar entries" ON "public"."content_calendar" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "created_by") WITH CHECK (auth.uid() = "created_by");
DROP POLICY IF EXISTS "Users can delete own calendar entries" ON "public"."content_calendar";
CREATE POLICY "Users can delete own calendar entries" ON "public"."content_calendar" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "created_by");
REVOKE ALL ON "public"."content_calendar" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."content_calendar" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."content_calendar" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."content_calendar" TO "privacy_worker";

-- public.content_modifications (content_modifications.yaml)
ALTER TABLE "public"."content_modifications" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'content_modifications' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own modifications', 'Users can create modifications of own optimizations', 'Users can update own modifications', 'Service role deletes subject modifications']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."content_modifications"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."content_modifications";
CREATE POLICY "tenant_isolation" ON "public"."content_modifications" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."content_modifications";
CREATE POLICY "privacy_worker" ON "public"."content_modifications" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own modifications" ON "public"."content_modifications";
CREATE POLICY "Users can view own modifications" ON "public"."content_modifications" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can create modifications of own optimizations" ON "public"."content_modifications";
CREATE POLICY "Users can create modifications of own optimizations" ON "public"."content_modifications" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "user_id" AND EXISTS (SELECT 1 FROM "public"."optimizations" "o" WHERE "o"."id" = "content_modifications"."optimization_id" AND "o"."user_id" = auth.uid()));
DROP POLICY IF EXISTS "Users can update own modifications" ON "public"."content_modifications";
CREATE POLICY "Users can update own modifications" ON "public"."content_modifications" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "user_id") WITH CHECK (auth.uid() = "user_id" AND EXISTS (SELECT 1 FROM "public"."optimizations" "o" WHERE "o"."id" = "content_modifications"."optimization_id" AND "o"."user_id" = auth.uid()));
DROP POLICY IF EXISTS "Service role deletes subject modifications" ON "public"."content_modifications";
CREATE POLICY "Service role deletes subject modifications" ON "public"."content_modifications" AS PERMISSIVE FOR DELETE TO "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."content_modifications" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."content_modifications" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."content_modifications" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."content_modifications" TO "privacy_worker";

-- public.conversation_messages (conversation_messages.yaml)
ALTER TABLE "public"."conversation_messages" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'conversation_messages' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own messages', 'Users can create own messages', 'Users can update own messages', 'Users can delete own messages']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."conversation_messages"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."conversation_messages";
CREATE POLICY "tenant_isolation" ON "public"."conversation_messages" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."conversation_messages";
CREATE POLICY "privacy_worker" ON "public"."conversation_messages" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own messages" ON "public"."conversation_messages";
CREATE POLICY "Users can view own messages" ON "public"."conversation_messages" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can create own messages" ON "public"."conversation_messages";
CREATE POLICY "Users can create own messages" ON "public"."conversation_messages" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "user_id" AND EXISTS (SELECT 1 FROM "public"."conversation_sessions" "s" WHERE "s"."id" = "conversation_messages"."session_id" AND "s"."user_id" = auth.uid()));
DROP POLICY IF EXISTS "Users can update own messages" ON "public"."conversation_messages";
CREATE POLICY "Users can update own messages" ON "public"."conversation_messages" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "user_id") WITH CHECK (auth.uid() = "user_id" AND EXISTS (SELECT 1 FROM "public"."conversation_sessions" "s" WHERE "s"."id" = "conversation_messages"."session_id" AND "s"."user_id" = auth.uid()));
DROP POLICY IF EXISTS "Users can delete own messages" ON "public"."conversation_messages";
CREATE POLICY "Users can delete own messages" ON "public"."conversation_messages" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."conversation_messages" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."conversation_messages" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."conversation_messages" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."conversation_messages" TO "privacy_worker";

-- public.conversation_sessions (conversation_sessions.yaml)
ALTER TABLE "public"."conversation_sessions" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'conversation_sessions' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own sessions', 'Users can create own sessions', 'Users can update own sessions', 'Users can delete own sessions']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."conversation_sessions"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."conversation_sessions";
CREATE POLICY "tenant_isolation" ON "public"."conversation_sessions" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."conversation_sessions";
CREATE POLICY "privacy_worker" ON "public"."conversation_sessions" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own sessions" ON "public"."conversation_sessions";
CREATE POLICY "Users can view own sessions" ON "public"."conversation_sessions" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can create own sessions" ON "public"."conversation_sessions";
CREATE POLICY "Users can create own sessions" ON "public"."conversation_sessions" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "user_id" AND EXISTS (SELECT 1 FROM "public"."brands" "b" WHERE "b"."id" = "conversation_sessions"."brand_id" AND "b"."user_id" = auth.uid()));
DROP POLICY IF EXISTS "Users can update own sessions" ON "public"."conversation_sessions";
CREATE POLICY "Users can update own sessions" ON "public"."conversation_sessions" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "user_id") WITH CHECK (auth.uid() = "user_id" AND EXISTS (SELECT 1 FROM "public"."brands" "b" WHERE "b"."id" = "conversation_sessions"."brand_id" AND "b"."user_id" = auth.uid()));
DROP POLICY IF EXISTS "Users can delete own sessions" ON "public"."conversation_sessions";
CREATE POLICY "Users can delete own sessions" ON "public"."conversation_sessions" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."conversation_sessions" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."conversation_sessions" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."conversation_sessions" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."conversation_sessions" TO "privacy_worker";

-- public.data_deletion_requests (data_deletion_requests.yaml)
ALTER TABLE "public"."data_deletion_requests" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'data_deletion_requests' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own deletion requests']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."data_deletion_requests"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."data_deletion_requests";
CREATE POLICY "tenant_isolation" ON "public"."data_deletion_requests" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."data_deletion_requests";
CREATE POLICY "privacy_worker" ON "public"."data_deletion_requests" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own deletion requests" ON "public"."data_deletion_requests";
CREATE POLICY "Users can view own deletion requests" ON "public"."data_deletion_requests" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."data_deletion_requests" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT ("id", "tenant_id", "user_id", "status", "confirmation_required", "requested_at", "identity_verified_at", "due_at", "extended_due_at", "extension_reason", "extended_at", "confirmed_at", "canceled_at", "started_at", "completed_at", "status_reason", "created_at", "updated_at", "duplicate_of") ON "public"."data_deletion_requests" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."data_deletion_requests" TO "privacy_worker";

-- public.data_export_requests (data_export_requests.yaml)
ALTER TABLE "public"."data_export_requests" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'data_export_requests' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own export requests']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."data_export_requests"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."data_export_requests";
CREATE POLICY "tenant_isolation" ON "public"."data_export_requests" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."data_export_requests";
CREATE POLICY "privacy_worker" ON "public"."data_export_requests" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own export requests" ON "public"."data_export_requests";
CREATE POLICY "Users can view own export requests" ON "public"."data_export_requests" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."data_export_requests" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT ("id", "tenant_id", "user_id", "status", "requested_at", "identity_verified_at", "due_at", "extended_due_at", "extension_reason", "extended_at", "started_at", "completed_at", "download_expires_at", "status_reason", "created_at", "updated_at", "duplicate_of") ON "public"."data_export_requests" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."data_export_requests" TO "privacy_worker";

-- public.ghl_opportunities (ghl_opportunities.yaml)
ALTER TABLE "public"."ghl_opportunities" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'ghl_opportunities' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own opportunities', 'Service role creates subject opportunities', 'Service role updates subject opportunities', 'Service role deletes subject opportunities']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."ghl_opportunities"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."ghl_opportunities";
CREATE POLICY "tenant_isolation" ON "public"."ghl_opportunities" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."ghl_opportunities";
CREATE POLICY "privacy_worker" ON "public"."ghl_opportunities" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own opportunities" ON "public"."ghl_opportunities";
CREATE POLICY "Users can view own opportunities" ON "public"."ghl_opportunities" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Service role creates subject opportunities" ON "public"."ghl_opportunities";
CREATE POLICY "Service role creates subject opportunities" ON "public"."ghl_opportunities" AS PERMISSIVE FOR INSERT TO "service_role" WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Service role updates subject opportunities" ON "public"."ghl_opportunities";
CREATE POLICY "Service role updates subject opportunities" ON "public"."ghl_opportunities" AS PERMISSIVE FOR UPDATE TO "service_role" USING (auth.uid() = "user_id") WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Service role deletes subject opportunities" ON "public"."ghl_opportunities";
CREATE POLICY "Service role deletes subject opportunities" ON "public"."ghl_opportunities" AS PERMISSIVE FOR DELETE TO "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."ghl_opportunities" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."ghl_opportunities" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."ghl_opportunities" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."ghl_opportunities" TO "privacy_worker";

-- public.job_drafts (job_drafts.yaml)
ALTER TABLE "public"."job_drafts" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'job_drafts' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Session holders can view anonymous session drafts', 'Anonymous users can create session drafts', 'Anonymous users can update their session drafts', 'Users can view own job drafts', 'Users can create own job drafts', 'Users can update own job drafts', 'Users can delete own job drafts']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."job_drafts"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."job_drafts";
CREATE POLICY "tenant_isolation" ON "public"."job_drafts" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."job_drafts";
CREATE POLICY "privacy_worker" ON "public"."job_drafts" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Session holders can view anonymous session drafts" ON "public"."job_drafts";
CREATE POLICY "Session holders can view anonymous session drafts" ON "public"."job_drafts" AS PERMISSIVE FOR SELECT TO "anon", "authenticated" USING ("user_id" IS NULL AND "session_id" = auth.jwt() ->> 'session_id');
DROP POLICY IF EXISTS "Anonymous users can create session drafts" ON "public"."job_drafts";
CREATE POLICY "Anonymous users can create session drafts" ON "public"."job_drafts" AS PERMISSIVE FOR INSERT TO "anon" WITH CHECK ("user_id" IS NULL AND "session_id" = auth.jwt() ->> 'session_id');
DROP POLICY IF EXISTS "Anonymous users can update their session drafts" ON "public"."job_drafts";
CREATE POLICY "Anonymous users can update their session drafts" ON "public"."job_drafts" AS PERMISSIVE FOR UPDATE TO "anon" USING ("user_id" IS NULL AND "session_id" = auth.jwt() ->> 'session_id') WITH CHECK ("user_id" IS NULL AND "session_id" = auth.jwt() ->> 'session_id');
DROP POLICY IF EXISTS "Users can view own job drafts" ON "public"."job_drafts";
CREATE POLICY "Users can view own job drafts" ON "public"."job_drafts" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can create own job drafts" ON "public"."job_drafts";
CREATE POLICY "Users can create own job drafts" ON "public"."job_drafts" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can update own job drafts" ON "public"."job_drafts";
CREATE POLICY "Users can update own job drafts" ON "public"."job_drafts" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "user_id" OR "user_id" IS NULL AND "session_id" = auth.jwt() ->> 'session_id') WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can delete own job drafts" ON "public"."job_drafts";
CREATE POLICY "Users can delete own job drafts" ON "public"."job_drafts" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."job_drafts" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."job_drafts" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."job_drafts" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."job_drafts" TO "privacy_worker";

-- public.lead_activities (lead_activities.yaml)
ALTER TABLE "public"."lead_activities" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'lead_activities' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view activities of own leads', 'Users can record activities of own leads', 'Users can update activities of own leads', 'Users can delete activities of own leads']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."lead_activities"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."lead_activities";
CREATE POLICY "tenant_isolation" ON "public"."lead_activities" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."lead_activities";
CREATE POLICY "privacy_worker" ON "public"."lead_activities" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view activities of own leads" ON "public"."lead_activities";
CREATE POLICY "Users can view activities of own leads" ON "public"."lead_activities" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (EXISTS (SELECT 1 FROM "public"."leads" "l" WHERE "l"."id" = "lead_activities"."lead_id" AND "l"."created_by" = auth.uid()));
DROP POLICY IF EXISTS "Users can record activities of own leads" ON "public"."lead_activities";
CREATE POLICY "Users can record activities of own leads" ON "public"."lead_activities" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (EXISTS (SELECT 1 FROM "public"."leads" "l" WHERE "l"."id" = "lead_activities"."lead_id" AND "l"."created_by" = auth.uid()));
DROP POLICY IF EXISTS "Users can update activities of own leads" ON "public"."lead_activities";
CREATE POLICY "Users can update activities of own leads" ON "public"."lead_activities" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (EXISTS (SELECT 1 FROM "public"."leads" "l" WHERE "l"."id" = "lead_activities"."lead_id" AND "l"."created_by" = auth.uid())) WITH CHECK (EXISTS (SELECT 1 FROM "public"."leads" "l" WHERE "l"."id" = "lead_activities"."lead_id" AND "l"."created_by" = auth.uid()));
DROP POLICY IF EXISTS "Users can delete activities of own leads" ON "public"."lead_activities";
CREATE POLICY "Users can delete activities of own leads" ON "public"."lead_activities" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (EXISTS (SELECT 1 FROM "public"."leads" "l" WHERE "l"."id" = "lead_activities"."lead_id" AND "l"."created_by" = auth.uid()));
REVOKE ALL ON "public"."lead_activities" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."lead_activities" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."lead_activities" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."lead_activities" TO "privacy_worker";

-- public.leads (leads.yaml)
ALTER TABLE "public"."leads" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'leads' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own leads', 'Users can create own leads', 'Users can update own leads', 'Users can delete own leads']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."leads"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."leads";
CREATE POLICY "tenant_isolation" ON "public"."leads" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."leads";
CREATE POLICY "privacy_worker" ON "public"."leads" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own leads" ON "public"."leads";
CREATE POLICY "Users can view own leads" ON "public"."leads" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "created_by");
DROP POLICY IF EXISTS "Users can create own leads" ON "public"."leads";
CREATE POLICY "Users can create own leads" ON "public"."leads" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "created_by");
DROP POLICY IF EXISTS "Users can update own leads" ON "public"."leads";
CREATE POLICY "Users can update own leads" ON "public"."leads" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "created_by") WITH CHECK (auth.uid() = "created_by");
DROP POLICY IF EXISTS "Users can delete own leads" ON "public"."leads";
CREATE POLICY "Users can delete own leads" ON "public"."leads" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "created_by");
REVOKE ALL ON "public"."leads" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."leads" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."leads" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."leads" TO "privacy_worker";

-- public.optimizations (optimizations.yaml)
ALTER TABLE "public"."optimizations" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'optimizations' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own optimizations', 'Users can create own optimizations', 'Users can update own optimizations', 'Users can delete own optimizations']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."optimizations"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."optimizations";
CREATE POLICY "tenant_isolation" ON "public"."optimizations" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."optimizations";
CREATE POLICY "privacy_worker" ON "public"."optimizations" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own optimizations" ON "public"."optimizations";
CREATE POLICY "Users can view own optimizations" ON "public"."optimizations" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can create own optimizations" ON "public"."optimizations";
CREATE POLICY "Users can create own optimizations" ON "public"."optimizations" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can update own optimizations" ON "public"."optimizations";
CREATE POLICY "Users can update own optimizations" ON "public"."optimizations" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "user_id") WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can delete own optimizations" ON "public"."optimizations";
CREATE POLICY "Users can delete own optimizations" ON "public"."optimizations" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."optimizations" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."optimizations" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."optimizations" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."optimizations" TO "privacy_worker";

-- public.profiles (profiles.yaml)
ALTER TABLE "public"."profiles" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'profiles' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own profile', 'Users can insert own profile', 'Users can update own profile', 'Users can delete own profile']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."profiles"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."profiles";
CREATE POLICY "tenant_isolation" ON "public"."profiles" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."profiles";
CREATE POLICY "privacy_worker" ON "public"."profiles" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own profile" ON "public"."profiles";
CREATE POLICY "Users can view own profile" ON "public"."profiles" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "id");
DROP POLICY IF EXISTS "Users can insert own profile" ON "public"."profiles";
CREATE POLICY "Users can insert own profile" ON "public"."profiles" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "id");
DROP POLICY IF EXISTS "Users can update own profile" ON "public"."profiles";
CREATE POLICY "Users can update own profile" ON "public"."profiles" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "id") WITH CHECK (auth.uid() = "id");
DROP POLICY IF EXISTS "Users can delete own profile" ON "public"."profiles";
CREATE POLICY "Users can delete own profile" ON "public"."profiles" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "id");
REVOKE ALL ON "public"."profiles" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."profiles" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."profiles" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."profiles" TO "privacy_worker";

-- public.projects (projects.yaml)
ALTER TABLE "public"."projects" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'projects' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view their projects', 'Users can insert their projects', 'Users can update their projects', 'Users can delete their projects']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."projects"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."projects";
CREATE POLICY "tenant_isolation" ON "public"."projects" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."projects";
CREATE POLICY "privacy_worker" ON "public"."projects" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view their projects" ON "public"."projects";
CREATE POLICY "Users can view their projects" ON "public"."projects" AS PERMISSIVE FOR SELECT TO public USING (auth.uid() = "user_id" OR "is_public" = true);
DROP POLICY IF EXISTS "Users can insert their projects" ON "public"."projects";
CREATE POLICY "Users can insert their projects" ON "public"."projects" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can update their projects" ON "public"."projects";
CREATE POLICY "Users can update their projects" ON "public"."projects" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "user_id") WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can delete their projects" ON "public"."projects";
CREATE POLICY "Users can delete their projects" ON "public"."projects" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."projects" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."projects" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."projects" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."projects" TO "privacy_worker";

-- public.sitemaps (sitemaps.yaml)
ALTER TABLE "public"."sitemaps" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'sitemaps' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view sitemaps of visible projects', 'Users can insert sitemaps of their projects', 'Users can update sitemaps of their projects', 'Users can delete sitemaps of their projects']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."sitemaps"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."sitemaps";
CREATE POLICY "tenant_isolation" ON "public"."sitemaps" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."sitemaps";
CREATE POLICY "privacy_worker" ON "public"."sitemaps" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view sitemaps of visible projects" ON "public"."sitemaps";
CREATE POLICY "Users can view sitemaps of visible projects" ON "public"."sitemaps" AS PERMISSIVE FOR SELECT TO public USING (EXISTS (SELECT 1 FROM "public"."projects" "p" WHERE "p"."id" = "sitemaps"."project_id" AND ("p"."user_id" = auth.uid() OR "p"."is_public" = true)));
DROP POLICY IF EXISTS "Users can insert sitemaps of their projects" ON "public"."sitemaps";
CREATE POLICY "Users can insert sitemaps of their projects" ON "public"."sitemaps" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (EXISTS (SELECT 1 FROM "public"."projects" "p" WHERE "p"."id" = "sitemaps"."project_id" AND "p"."user_id" = auth.uid()));
DROP POLICY IF EXISTS "Users can update sitemaps of their projects" ON "public"."sitemaps";
CREATE POLICY "Users can update sitemaps of their projects" ON "public"."sitemaps" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (EXISTS (SELECT 1 FROM "public"."projects" "p" WHERE "p"."id" = "sitemaps"."project_id" AND "p"."user_id" = auth.uid())) WITH CHECK (EXISTS (SELECT 1 FROM "public"."projects" "p" WHERE "p"."id" = "sitemaps"."project_id" AND "p"."user_id" = auth.uid()));
DROP POLICY IF EXISTS "Users can delete sitemaps of their projects" ON "public"."sitemaps";
CREATE POLICY "Users can delete sitemaps of their projects" ON "public"."sitemaps" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (EXISTS (SELECT 1 FROM "public"."projects" "p" WHERE "p"."id" = "sitemaps"."project_id" AND "p"."user_id" = auth.uid()));
REVOKE ALL ON "public"."sitemaps" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."sitemaps" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."sitemaps" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."sitemaps" TO "privacy_worker";

-- public.style_customization_history (style_customization_history.yaml)
ALTER TABLE "public"."style_customization_history" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'style_customization_history' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own style history', 'Users can record own style history', 'Service role deletes subject style history']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."style_customization_history"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."style_customization_history";
CREATE POLICY "tenant_isolation" ON "public"."style_customization_history" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."style_customization_history";
CREATE POLICY "privacy_worker" ON "public"."style_customization_history" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own style history" ON "public"."style_customization_history";
CREATE POLICY "Users can view own style history" ON "public"."style_customization_history" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can record own style history" ON "public"."style_customization_history";
CREATE POLICY "Users can record own style history" ON "public"."style_customization_history" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "user_id" AND EXISTS (SELECT 1 FROM "public"."optimizations" "o" WHERE "o"."id" = "style_customization_history"."optimization_id" AND "o"."user_id" = auth.uid()));
DROP POLICY IF EXISTS "Service role deletes subject style history" ON "public"."style_customization_history";
CREATE POLICY "Service role deletes subject style history" ON "public"."style_customization_history" AS PERMISSIVE FOR DELETE TO "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."style_customization_history" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."style_customization_history" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."style_customization_history" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."style_customization_history" TO "privacy_worker";

-- public.style_guides (style_guides.yaml)
ALTER TABLE "public"."style_guides" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'style_guides' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view style guides of visible projects', 'Users can insert style guides of their projects', 'Users can update style guides of their projects', 'Users can delete style guides of their projects']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."style_guides"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."style_guides";
CREATE POLICY "tenant_isolation" ON "public"."style_guides" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."style_guides";
CREATE POLICY "privacy_worker" ON "public"."style_guides" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view style guides of visible projects" ON "public"."style_guides";
CREATE POLICY "Users can view style guides of visible projects" ON "public"."style_guides" AS PERMISSIVE FOR SELECT TO public USING (EXISTS (SELECT 1 FROM "public"."wireframes" "w" WHERE "w"."id" = "style_guides"."wireframe_id" AND EXISTS (SELECT 1 FROM "public"."sitemaps" "s" WHERE "s"."id" = "w"."sitemap_id" AND EXISTS (SELECT 1 FROM "public"."projects" "p" WHERE "p"."id" = "s"."project_id" AND ("p"."user_id" = auth.uid() OR "p"."is_public" = true)))));
DROP POLICY IF EXISTS "Users can insert style guides of their projects" ON "public"."style_guides";
CREATE POLICY "Users can insert style guides of their projects" ON "public"."style_guides" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (EXISTS (SELECT 1 FROM "public"."wireframes" "w" WHERE "w"."id" = "style_guides"."wireframe_id" AND EXISTS (SELECT 1 FROM "public"."sitemaps" "s" WHERE "s"."id" = "w"."sitemap_id" AND EXISTS (SELECT 1 FROM "public"."projects" "p" WHERE "p"."id" = "s"."project_id" AND "p"."user_id" = auth.uid()))));
DROP POLICY IF EXISTS "Users can update style guides of their projects" ON "public"."style_guides";
CREATE POLICY "Users can update style guides of their projects" ON "public"."style_guides" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (EXISTS (SELECT 1 FROM "public"."wireframes" "w" WHERE "w"."id" = "style_guides"."wireframe_id" AND EXISTS (SELECT 1 FROM "public"."sitemaps" "s" WHERE "s"."id" = "w"."sitemap_id" AND EXISTS (SELECT 1 FROM "public"."projects" "p" WHERE "p"."id" = "s"."project_id" AND "p"."user_id" = auth.uid())))) WITH CHECK (EXISTS (SELECT 1 FROM "public"."wireframes" "w" WHERE "w"."id" = "style_guides"."wireframe_id" AND EXISTS (SELECT 1 FROM "public"."sitemaps" "s" WHERE "s"."id" = "w"."sitemap_id" AND EXISTS (SELECT 1 FROM "public"."projects" "p" WHERE "p"."id" = "s"."project_id" AND "p"."user_id" = auth.uid()))));
DROP POLICY IF EXISTS "Users can delete style guides of their projects" ON "public"."style_guides";
CREATE POLICY "Users can delete style guides of their projects" ON "public"."style_guides" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (EXISTS (SELECT 1 FROM "public"."wireframes" "w" WHERE "w"."id" = "style_guides"."wireframe_id" AND EXISTS (SELECT 1 FROM "public"."sitemaps" "s" WHERE "s"."id" = "w"."sitemap_id" AND EXISTS (SELECT 1 FROM "public"."projects" "p" WHERE "p"."id" = "s"."project_id" AND "p"."user_id" = auth.uid()))));
REVOKE ALL ON "public"."style_guides" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."style_guides" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."style_guides" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."style_guides" TO "privacy_worker";

-- public.support_tickets (support_tickets.yaml)
ALTER TABLE "public"."support_tickets" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'support_tickets' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Anyone can file an anonymous ticket', 'Users can file own tickets', 'Users can view own tickets', 'Support staff manage tickets']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."support_tickets"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."support_tickets";
CREATE POLICY "tenant_isolation" ON "public"."support_tickets" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."support_tickets";
CREATE POLICY "privacy_worker" ON "public"."support_tickets" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Anyone can file an anonymous ticket" ON "public"."support_tickets";
CREATE POLICY "Anyone can file an anonymous ticket" ON "public"."support_tickets" AS PERMISSIVE FOR INSERT TO "anon" WITH CHECK ("user_id" IS NULL);
DROP POLICY IF EXISTS "Users can file own tickets" ON "public"."support_tickets";
CREATE POLICY "Users can file own tickets" ON "public"."support_tickets" AS PERMISSIVE FOR INSERT TO "authenticated" WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can view own tickets" ON "public"."support_tickets";
CREATE POLICY "Users can view own tickets" ON "public"."support_tickets" AS PERMISSIVE FOR SELECT TO "authenticated" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Support staff manage tickets" ON "public"."support_tickets";
CREATE POLICY "Support staff manage tickets" ON "public"."support_tickets" AS PERMISSIVE FOR ALL TO "service_role" USING (auth.role() = 'service_role') WITH CHECK (auth.role() = 'service_role');
REVOKE ALL ON "public"."support_tickets" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."support_tickets" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."support_tickets" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."support_tickets" TO "privacy_worker";

-- public.user_preferences (user_preferences.yaml)
ALTER TABLE "public"."user_preferences" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'user_preferences' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own preferences', 'Users can create own preferences', 'Users can update own preferences', 'Users can delete own preferences']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."user_preferences"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."user_preferences";
CREATE POLICY "tenant_isolation" ON "public"."user_preferences" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."user_preferences";
CREATE POLICY "privacy_worker" ON "public"."user_preferences" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own preferences" ON "public"."user_preferences";
CREATE POLICY "Users can view own preferences" ON "public"."user_preferences" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can create own preferences" ON "public"."user_preferences";
CREATE POLICY "Users can create own preferences" ON "public"."user_preferences" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can update own preferences" ON "public"."user_preferences";
CREATE POLICY "Users can update own preferences" ON "public"."user_preferences" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "user_id") WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can delete own preferences" ON "public"."user_preferences";
CREATE POLICY "Users can delete own preferences" ON "public"."user_preferences" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."user_preferences" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."user_preferences" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."user_preferences" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."user_preferences" TO "privacy_worker";

-- public.user_privacy_settings (user_privacy_settings.yaml)
ALTER TABLE "public"."user_privacy_settings" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'user_privacy_settings' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own privacy settings']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."user_privacy_settings"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."user_privacy_settings";
CREATE POLICY "tenant_isolation" ON "public"."user_privacy_settings" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."user_privacy_settings";
CREATE POLICY "privacy_worker" ON "public"."user_privacy_settings" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own privacy settings" ON "public"."user_privacy_settings";
CREATE POLICY "Users can view own privacy settings" ON "public"."user_privacy_settings" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."user_privacy_settings" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT ON "public"."user_privacy_settings" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."user_privacy_settings" TO "privacy_worker";

-- public.user_secret_versions (user_secret_versions.yaml)
ALTER TABLE "public"."user_secret_versions" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'user_secret_versions' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own secret versions', 'Users can insert own secret versions', 'Users can delete own secret versions']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."user_secret_versions"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."user_secret_versions";
CREATE POLICY "tenant_isolation" ON "public"."user_secret_versions" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."user_secret_versions";
CREATE POLICY "privacy_worker" ON "public"."user_secret_versions" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own secret versions" ON "public"."user_secret_versions";
CREATE POLICY "Users can view own secret versions" ON "public"."user_secret_versions" AS PERMISSIVE FOR SELECT TO "gateway_secrets" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can insert own secret versions" ON "public"."user_secret_versions";
CREATE POLICY "Users can insert own secret versions" ON "public"."user_secret_versions" AS PERMISSIVE FOR INSERT TO "gateway_secrets" WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can delete own secret versions" ON "public"."user_secret_versions";
CREATE POLICY "Users can delete own secret versions" ON "public"."user_secret_versions" AS PERMISSIVE FOR DELETE TO "gateway_secrets" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."user_secret_versions" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."user_secret_versions" TO "gateway_secrets";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."user_secret_versions" TO "privacy_worker";

-- public.user_secrets (user_secrets.yaml)
ALTER TABLE "public"."user_secrets" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'user_secrets' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view own secrets', 'Users can insert own secrets', 'Users can update own secrets', 'Users can delete own secrets']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."user_secrets"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."user_secrets";
CREATE POLICY "tenant_isolation" ON "public"."user_secrets" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."user_secrets";
CREATE POLICY "privacy_worker" ON "public"."user_secrets" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view own secrets" ON "public"."user_secrets";
CREATE POLICY "Users can view own secrets" ON "public"."user_secrets" AS PERMISSIVE FOR SELECT TO "gateway_secrets" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can insert own secrets" ON "public"."user_secrets";
CREATE POLICY "Users can insert own secrets" ON "public"."user_secrets" AS PERMISSIVE FOR INSERT TO "gateway_secrets" WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can update own secrets" ON "public"."user_secrets";
CREATE POLICY "Users can update own secrets" ON "public"."user_secrets" AS PERMISSIVE FOR UPDATE TO "gateway_secrets" USING (auth.uid() = "user_id") WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can delete own secrets" ON "public"."user_secrets";
CREATE POLICY "Users can delete own secrets" ON "public"."user_secrets" AS PERMISSIVE FOR DELETE TO "gateway_secrets" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."user_secrets" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."user_secrets" TO "gateway_secrets";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."user_secrets" TO "privacy_worker";

-- public.version_history (version_history.yaml)
ALTER TABLE "public"."version_history" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'version_history' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view their version history', 'Users can create their version history', 'Users can delete their version history']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."version_history"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."version_history";
CREATE POLICY "tenant_isolation" ON "public"."version_history" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."version_history";
CREATE POLICY "privacy_worker" ON "public"."version_history" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view their version history" ON "public"."version_history";
CREATE POLICY "Users can view their version history" ON "public"."version_history" AS PERMISSIVE FOR SELECT TO "authenticated", "service_role" USING (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can create their version history" ON "public"."version_history";
CREATE POLICY "Users can create their version history" ON "public"."version_history" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "user_id");
DROP POLICY IF EXISTS "Users can delete their version history" ON "public"."version_history";
CREATE POLICY "Users can delete their version history" ON "public"."version_history" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "user_id");
REVOKE ALL ON "public"."version_history" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."version_history" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."version_history" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."version_history" TO "privacy_worker";

-- public.wireframes (wireframes.yaml)
ALTER TABLE "public"."wireframes" ENABLE ROW LEVEL SECURITY;
DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'wireframes' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view wireframes of visible projects', 'Users can insert wireframes of their projects', 'Users can update wireframes of their projects', 'Users can delete wireframes of their projects']::text[]) LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."wireframes"'); END LOOP; END $rls$;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."wireframes";
CREATE POLICY "tenant_isolation" ON "public"."wireframes" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());
DROP POLICY IF EXISTS "privacy_worker" ON "public"."wireframes";
CREATE POLICY "privacy_worker" ON "public"."wireframes" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "Users can view wireframes of visible projects" ON "public"."wireframes";
CREATE POLICY "Users can view wireframes of visible projects" ON "public"."wireframes" AS PERMISSIVE FOR SELECT TO public USING (EXISTS (SELECT 1 FROM "public"."sitemaps" "s" WHERE "s"."id" = "wireframes"."sitemap_id" AND EXISTS (SELECT 1 FROM "public"."projects" "p" WHERE "p"."id" = "s"."project_id" AND ("p"."user_id" = auth.uid() OR "p"."is_public" = true))));
DROP POLICY IF EXISTS "Users can insert wireframes of their projects" ON "public"."wireframes";
CREATE POLICY "Users can insert wireframes of their projects" ON "public"."wireframes" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (EXISTS (SELECT 1 FROM "public"."sitemaps" "s" WHERE "s"."id" = "wireframes"."sitemap_id" AND EXISTS (SELECT 1 FROM "public"."projects" "p" WHERE "p"."id" = "s"."project_id" AND "p"."user_id" = auth.uid())));
DROP POLICY IF EXISTS "Users can update wireframes of their projects" ON "public"."wireframes";
CREATE POLICY "Users can update wireframes of their projects" ON "public"."wireframes" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (EXISTS (SELECT 1 FROM "public"."sitemaps" "s" WHERE "s"."id" = "wireframes"."sitemap_id" AND EXISTS (SELECT 1 FROM "public"."projects" "p" WHERE "p"."id" = "s"."project_id" AND "p"."user_id" = auth.uid()))) WITH CHECK (EXISTS (SELECT 1 FROM "public"."sitemaps" "s" WHERE "s"."id" = "wireframes"."sitemap_id" AND EXISTS (SELECT 1 FROM "public"."projects" "p" WHERE "p"."id" = "s"."project_id" AND "p"."user_id" = auth.uid())));
DROP POLICY IF EXISTS "Users can delete wireframes of their projects" ON "public"."wireframes";
CREATE POLICY "Users can delete wireframes of their projects" ON "public"."wireframes" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (EXISTS (SELECT 1 FROM "public"."sitemaps" "s" WHERE "s"."id" = "wireframes"."sitemap_id" AND EXISTS (SELECT 1 FROM "public"."projects" "p" WHERE "p"."id" = "s"."project_id" AND "p"."user_id" = auth.uid())));
REVOKE ALL ON "public"."wireframes" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";
GRANT SELECT, INSERT, UPDATE ON "public"."wireframes" TO "anon", "authenticated", "service_role";
GRANT DELETE ON "public"."wireframes" TO "anon", "authenticated", "service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."wireframes" TO "privacy_worker";
