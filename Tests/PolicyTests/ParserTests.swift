import Policy
import Testing

@Suite("Expression parser")
struct ParserTests {
    @Test("every policy Postgres prints back (pg_get_expr) parses")
    func livePoliciesParse() throws {
        let live = try LiveFixture.shared.get()
        #expect(live.policies.count == 187)  // a guard against an empty or truncated fixture
        for policy in live.policies {
            for text in [policy.qual, policy.withCheck].compactMap({ $0 }) {
                let parsed = try PolicyExpression.parse(text)
                #expect(try PolicyExpression.parse(parsed.description) == parsed, "\(policy.tablename): \(policy.policyname)")
            }
        }
    }

    @Test(
        "the forms pg_get_expr prints parse",
        arguments: [
            "(auth.uid() = user_id)",
            "((user_id IS NULL) AND (session_id = (auth.jwt() ->> 'session_id'::text)))",
            "(auth.role() = 'service_role'::text)",
            "true",
            "(status = ANY (ARRAY['draft'::text, 'active'::text]))",
            "(status <> ALL (ARRAY['completed'::text, 'failed'::text]))",
            "((auth.uid() = user_id) IS NOT TRUE)",
            "((source)::text = 'email'::text)",
            "(created_at > '2024-01-01 00:00:00+00'::timestamp with time zone)",
            "(label = ('x'::character varying)::text)",
            "(auth.uid() = ANY (collaborators))",
            "(NOT (is_public IS FALSE))",
            "(score >= '-5'::integer)",
            """
            (EXISTS ( SELECT 1
               FROM projects p
              WHERE ((p.id = sitemaps.project_id) AND ((p.user_id = auth.uid()) OR (p.is_public = true)))))
            """,
        ])
    func pgForms(text: String) throws {
        let parsed = try PolicyExpression.parse(text)
        #expect(try PolicyExpression.parse(parsed.description) == parsed)
    }

    @Test("extra parentheses and casts do not change the tree the parser builds")
    func parenthesesAreNotNodes() throws {
        #expect(try PolicyExpression.parse("((auth.uid() = user_id))") == PolicyExpression.parse("auth.uid() = user_id"))
        #expect(try PolicyExpression.parse("(a AND b) AND (c AND d)") == PolicyExpression.parse("a AND b AND c AND d"))
        #expect(
            try PolicyExpression.parse("p.id = sitemaps.project_id")
                == .comparison(
                    .column(.init(qualifier: "p", name: "id")), .equal, .column(.init(qualifier: "sitemaps", name: "project_id"))))
        #expect(try PolicyExpression.parse("auth.jwt() ->> 'session_id'::text") == .jwtClaim("session_id"))
        #expect(try PolicyExpression.parse("a != b") == PolicyExpression.parse("a <> b"))
    }

    @Test("precedence follows Postgres: NOT binds looser than =, AND tighter than OR")
    func precedence() throws {
        let a = PolicyExpression.column(.init(name: "a"))
        let b = PolicyExpression.column(.init(name: "b"))
        let c = PolicyExpression.column(.init(name: "c"))
        #expect(try PolicyExpression.parse("NOT a = b") == .not(.comparison(a, .equal, b)))
        #expect(try PolicyExpression.parse("a OR b AND c") == .or([a, .and([b, c])]))
        #expect(try PolicyExpression.parse("a = b IS NULL") == .isNull(.comparison(a, .equal, b), negated: false))
        #expect(
            try PolicyExpression.parse("Is_Public = TRUE") == .comparison(.column(.init(name: "is_public")), .equal, .literal(.bool(true))))
        #expect(try PolicyExpression.parse("\"Mixed Case\" IS NOT NULL") == .isNull(.column(.init(name: "Mixed Case")), negated: true))
    }

    @Test(
        "malformed expressions are refused with the offset of the problem",
        arguments: [
            ("auth.uid( = user_id", 10, "auth.uid() takes no arguments"),
            ("user_id = ", 10, "unexpected end of expression"),
            ("user_id = 'open", 10, "unterminated string literal"),
            ("user_id = now()", 10, "function now() is not allowed in a policy"),
            ("pg_sleep(10) IS NULL", 0, "function pg_sleep() is not allowed in a policy"),
            ("data ->> 'x' = 'y'", 5, "operator '->>' is only allowed on auth.jwt()"),
            ("a = b = c", 6, "comparison operators do not chain"),
            ("a IN ()", 6, "empty IN list"),
            ("x::foo IS NULL", 3, "unknown type 'foo'"),
            ("a = 1; DROP TABLE t", 5, "unexpected character ';'"),
            ("EXISTS (SELECT * FROM t)", 15, "unexpected character '*'"),
        ] as [(String, Int, String)])
    func malformed(text: String, offset: Int, message: String) {
        #expect {
            try PolicyExpression.parse(text)
        } throws: { error in
            guard let error = error as? PolicyError else { return false }
            return error.expressionOffset == offset && error.message == message
        }
    }

    @Test("deeply nested input is refused instead of exhausting the stack")
    func deepNesting() {
        let text = String(repeating: "(", count: 10_000) + "true" + String(repeating: ")", count: 10_000)
        #expect(throws: PolicyError.self) { try PolicyExpression.parse(text) }
    }
}
