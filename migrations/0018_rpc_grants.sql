-- 0018: EXECUTE on the functions /rest/v1/rpc calls, and SELECT on the views /rest/v1 serves, for
-- the roles their policy files declare only.
--
-- Postgres grants EXECUTE on every new function to PUBLIC, so anon could call the seeds'
-- functions although 0004/0005 granted them to authenticated and service_role: the gateway
-- calls only functions declared in a policy file (`functions:`) and checks the declared roles
-- before any SQL, and the database now refuses the same. Generated from the policy files
-- (PolicySet.functionGrantStatements); the drift check compares them with has_function_privilege.

REVOKE ALL ON FUNCTION public.cancel_conversation_session(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.cancel_conversation_session(uuid) TO authenticated, service_role;
REVOKE ALL ON FUNCTION public.complete_conversation_session(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.complete_conversation_session(uuid) TO authenticated, service_role;
REVOKE ALL ON FUNCTION public.create_version_history(text, uuid, uuid, jsonb, jsonb, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.create_version_history(text, uuid, uuid, jsonb, jsonb, text, boolean) TO authenticated, service_role;
REVOKE ALL ON FUNCTION public.get_conversation_history(uuid, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.get_conversation_history(uuid, integer) TO authenticated, service_role;
REVOKE ALL ON FUNCTION public.get_next_version(text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.get_next_version(text, uuid) TO authenticated, service_role;
REVOKE ALL ON FUNCTION public.get_session_analytics(uuid, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.get_session_analytics(uuid, integer) TO authenticated, service_role;
REVOKE ALL ON FUNCTION public.get_session_cost(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.get_session_cost(uuid) TO authenticated, service_role;
REVOKE ALL ON FUNCTION public.get_session_message_stats(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.get_session_message_stats(uuid) TO authenticated, service_role;

-- The seeds' views, revoked in 0011 until a route served them: security_invoker (0004), so
-- conversation_messages' policies apply inside them to the caller (PolicySet.viewGrantStatements).
GRANT SELECT ON public.daily_message_volume TO authenticated, service_role;
GRANT SELECT ON public.provider_usage_stats TO authenticated, service_role;
