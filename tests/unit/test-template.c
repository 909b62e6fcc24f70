/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-error.h"
#include "itk-template.h"
#include "itk-value.h"

static JsonNode *
parse(const char *json)
{
        g_autoptr(GError) error = NULL;
        JsonNode *node = json_from_string(json, &error);

        g_assert_no_error(error);
        g_assert_nonnull(node);
        return node;
}

static JsonNode *
string_node(const char *text)
{
        return json_node_init_string(json_node_alloc(), text);
}

/* A scope like an execution's: parameters, variables, two completed steps,
 * one step that has not run, a credential store with "gw". */
typedef struct {
        ItkTemplateScope scope;
        JsonObject *parameters;
        JsonObject *variables;
        GHashTable *step_outputs;
        GHashTable *known_steps;
        GHashTable *credential_params;
        GPtrArray *secrets; /* what secret_used reported */
        guint lookups;
} Fixture;

static JsonObject *
fixture_credential_lookup_cb(const char *name, gpointer user_data, GError **error)
{
        Fixture *fx = user_data;
        JsonObject *fields;

        fx->lookups++;
        if (!g_str_equal(name, "gw")) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_CREDENTIAL,
                            "no credential named '%s'", name);
                return NULL;
        }
        fields = json_object_new();
        json_object_set_string_member(fields, "username", "admin");
        json_object_set_string_member(fields, "password", "s3cret-pw");
        json_object_set_string_member(fields, "gateway_url", "http://gw:8088");
        json_object_set_string_member(fields, "api_token", "tok-123456");
        return fields; /* no description */
}

static void
fixture_secret_used_cb(const char *secret, gpointer user_data)
{
        Fixture *fx = user_data;

        g_ptr_array_add(fx->secrets, g_strdup(secret));
}

static Fixture *
fixture_new(void)
{
        Fixture *fx = g_new0(Fixture, 1);
        g_autoptr(JsonNode) params =
                parse("{\"n\": 5, \"f\": 1.5, \"whole\": 2.0, \"b\": true, \"s\": \"text\","
                      "\"z\": null, \"l\": [1, \"two\", 3.0], \"o\": {\"k\": \"v\", \"n\": 1},"
                      "\"tricky\": \"{{ n }}\", \"cred\": \"gw\", \"badcred\": \"nope\","
                      "\"gateway_url\": \"http://localhost:8088\"}");
        g_autoptr(JsonNode) vars = parse("{\"count\": 3, \"m\": {\"deep\": [true]}}");

        fx->parameters = json_node_dup_object(params);
        fx->variables = json_node_dup_object(vars);
        fx->step_outputs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                 (GDestroyNotify)json_node_unref);
        g_hash_table_insert(fx->step_outputs, g_strdup("s1"),
                            parse("{\"status\": \"ok\", \"count\": 4, \"items\": [\"a\"]}"));
        g_hash_table_insert(fx->step_outputs, g_strdup("s2"), parse("{}"));
        fx->known_steps = g_hash_table_new(g_str_hash, g_str_equal);
        g_hash_table_add(fx->known_steps, (gpointer) "s1");
        g_hash_table_add(fx->known_steps, (gpointer) "s2");
        g_hash_table_add(fx->known_steps, (gpointer) "later");
        fx->credential_params = g_hash_table_new(g_str_hash, g_str_equal);
        g_hash_table_add(fx->credential_params, (gpointer) "cred");
        g_hash_table_add(fx->credential_params, (gpointer) "badcred");
        fx->secrets = g_ptr_array_new_with_free_func(g_free);

        fx->scope.parameters = fx->parameters;
        fx->scope.variables = fx->variables;
        fx->scope.step_outputs = fx->step_outputs;
        fx->scope.known_steps = fx->known_steps;
        fx->scope.credential_params = fx->credential_params;
        fx->scope.credential_lookup = fixture_credential_lookup_cb;
        fx->scope.credential_data = fx;
        fx->scope.secret_used = fixture_secret_used_cb;
        fx->scope.secret_data = fx;
        return fx;
}

static void
fixture_free(Fixture *fx)
{
        json_object_unref(fx->parameters);
        json_object_unref(fx->variables);
        g_hash_table_unref(fx->step_outputs);
        g_hash_table_unref(fx->known_steps);
        g_hash_table_unref(fx->credential_params);
        g_ptr_array_unref(fx->secrets);
        g_free(fx);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Fixture, fixture_free)

static JsonNode *
render_text(Fixture *fx, const char *text, GError **error)
{
        g_autoptr(JsonNode) node = string_node(text);

        return itk_template_render(&fx->scope, node, error);
}

/* Renders @text and compares the result's compact JSON (type included). */
static void
assert_renders(Fixture *fx, const char *text, const char *expected_json)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) out = render_text(fx, text, &error);
        g_autofree char *json = NULL;

        g_assert_no_error(error);
        g_assert_nonnull(out);
        json = itk_value_to_json(out);
        g_assert_cmpstr(json, ==, expected_json);
}

static void
assert_render_fails(Fixture *fx, const char *text, const char *message)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) out = render_text(fx, text, &error);

        g_assert_null(out);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_REFERENCE);
        g_assert_cmpstr(error->message, ==, message);
}

static void
test_template_grammar(void)
{
        const char *valid[] = {
                "{{x}}",
                "{{ x }}",
                "{{   parameter.x\t}}",
                "{{\nstep.a_1.k2\n}}",
                "pre {{ a }} post",
                "{{ a.b.c }}",
                "{{ color.red }}",
                "{{{ x }}}",
        };
        const char *invalid[] = {
                "",
                "plain text",
                "{{}}",
                "{{ }}",
                "{{ color: red; }}",
                "{{ a.b.c.d }}",
                "{{ a. b }}",
                "{{ a .b }}",
                "{{ a..b }}",
                "{{ .a }}",
                "{{ a- }}",
                "{{ x }",
                "{ { x } }",
                "{{ x y }}",
                "{{ é }}",
                "{{ font-family: Arial, sans-serif; margin: 20px; }}",
        };

        /* Compared as strings so a failure names the text. */
        for (gsize i = 0; i < G_N_ELEMENTS(valid); i++)
                g_assert_cmpstr(itk_template_text_has_references(valid[i]) ? NULL : valid[i], ==,
                                NULL);
        for (gsize i = 0; i < G_N_ELEMENTS(invalid); i++)
                g_assert_cmpstr(itk_template_text_has_references(invalid[i]) ? invalid[i] : NULL,
                                ==, NULL);
        g_assert_false(itk_template_text_has_references(NULL));
}

static void
test_template_whole_keeps_type(void)
{
        g_autoptr(Fixture) fx = fixture_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) out = NULL;

        assert_renders(fx, "{{ n }}", "5");
        assert_renders(fx, "{{ parameter.n }}", "5");
        assert_renders(fx, "{{ f }}", "1.5");
        assert_renders(fx, "{{ whole }}", "2.0");
        assert_renders(fx, "{{ b }}", "true");
        assert_renders(fx, "{{ z }}", "null");
        assert_renders(fx, "{{ s }}", "\"text\"");
        assert_renders(fx, "{{ l }}", "[1,\"two\",3.0]");
        assert_renders(fx, "{{ o }}", "{\"k\":\"v\",\"n\":1}");
        assert_renders(fx, "{{ variable.count }}", "3");
        assert_renders(fx, "{{ step.s1 }}", "{\"status\":\"ok\",\"count\":4,\"items\":[\"a\"]}");
        assert_renders(fx, "{{ step.s1.count }}", "4");
        assert_renders(fx, "{{ step.s1.items }}", "[\"a\"]");
        /* Keys of object values. */
        assert_renders(fx, "{{ parameter.o.n }}", "1");
        assert_renders(fx, "{{ variable.m.deep }}", "[true]");

        /* Whitespace inside the braces, any amount, still whole. */
        assert_renders(fx, "{{n}}", "5");
        assert_renders(fx, "{{ \t\n n \n}}", "5");
        /* Whitespace outside makes it text. */
        assert_renders(fx, " {{ n }}", "\" 5\"");
        assert_renders(fx, "{{ n }} ", "\"5 \"");

        /* The node type itself, not just its JSON text. */
        out = render_text(fx, "{{ n }}", &error);
        g_assert_no_error(error);
        g_assert_true(JSON_NODE_HOLDS_VALUE(out));
        g_assert_cmpint(json_node_get_value_type(out), ==, G_TYPE_INT64);
        g_assert_cmpint(json_node_get_int(out), ==, 5);
        g_clear_pointer(&out, json_node_unref);
        out = render_text(fx, "{{ l }}", &error);
        g_assert_no_error(error);
        g_assert_true(JSON_NODE_HOLDS_ARRAY(out));
        g_assert_cmpuint(json_array_get_length(json_node_get_array(out)), ==, 3);
}

static void
test_template_embedded_text(void)
{
        g_autoptr(Fixture) fx = fixture_new();

        assert_renders(fx, "n={{ n }} f={{ f }} w={{ whole }} b={{ b }} z=[{{ z }}] s={{ s }}",
                       "\"n=5 f=1.5 w=2.0 b=true z=[] s=text\"");
        assert_renders(fx, "l={{ l }} o={{ o }}",
                       "\"l=[1,\\\"two\\\",3.0] o={\\\"k\\\":\\\"v\\\",\\\"n\\\":1}\"");
        assert_renders(fx,
                       "{{ parameter.gateway_url }}/data/{{step.s1.status}}{{ variable.count }}",
                       "\"http://localhost:8088/data/ok3\"");
        /* Two references and nothing else is text, not a type. */
        assert_renders(fx, "{{ n }}{{ n }}", "\"55\"");
        /* A third brace stays a literal. */
        assert_renders(fx, "{{{ n }}}", "\"{5}\"");
}

static void
test_template_literal(void)
{
        g_autoptr(Fixture) fx = fixture_new();
        const char *literals[] = {
                "body {{ color: red; }}", "{{ a.b.c.d }}", "{{}}", "{{ n",
                "no braces at all",       "{ {n} }",
        };

        for (gsize i = 0; i < G_N_ELEMENTS(literals); i++) {
                g_autoptr(JsonNode) node = string_node(literals[i]);
                g_autoptr(GError) error = NULL;
                g_autoptr(JsonNode) out = itk_template_render(&fx->scope, node, &error);

                g_assert_no_error(error);
                /* Unchanged strings are shared, not copied. */
                g_assert_true(out == node);
                g_assert_cmpstr(json_node_get_string(out), ==, literals[i]);
        }

        /* CSS next to a reference: the CSS stays, the reference resolves. */
        assert_renders(fx, ".x {{ color: red; }} {{ s }}", "\".x {{ color: red; }} text\"");
        assert_renders(fx, "{{ a.b.c.d }}={{ n }}", "\"{{ a.b.c.d }}=5\"");
        /* A value is never rendered again: no injection through parameters. */
        assert_renders(fx, "{{ tricky }}", "\"{{ n }}\"");
        assert_renders(fx, "x {{ tricky }}", "\"x {{ n }}\"");
}

static void
test_template_recursion(void)
{
        g_autoptr(Fixture) fx = fixture_new();
        g_autoptr(JsonNode) node =
                parse("{\"{{ n }}\": \"{{ n }}\", \"keep\": [1, \"x\", {\"a\": null}],"
                      "\"list\": [\"{{ l }}\", {\"deep\": \"v={{ variable.count }}\"}, 7],"
                      "\"after\": \"plain\", \"css\": \"{{ color: red; }}\"}");
        g_autofree char *before = itk_value_to_json(node);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) out = itk_template_render(&fx->scope, node, &error);
        g_autofree char *json = NULL;
        g_autofree char *after = NULL;

        g_assert_no_error(error);
        json = itk_value_to_json(out);
        /* Keys stay as written, values resolve at any depth, order kept. */
        g_assert_cmpstr(json, ==,
                        "{\"{{ n }}\":5,\"keep\":[1,\"x\",{\"a\":null}],"
                        "\"list\":[[1,\"two\",3.0],{\"deep\":\"v=3\"},7],"
                        "\"after\":\"plain\",\"css\":\"{{ color: red; }}\"}");
        /* The input is not modified. */
        after = itk_value_to_json(node);
        g_assert_cmpstr(after, ==, before);
        /* Unchanged subtrees are shared with the input. */
        g_assert_true(json_object_get_member(json_node_get_object(out), "keep") ==
                      json_object_get_member(json_node_get_object(node), "keep"));
}

static void
test_template_no_reference_shared(void)
{
        g_autoptr(Fixture) fx = fixture_new();
        g_autoptr(JsonNode) node =
                parse("{\"message\": \"hello {{ color: red; }}\", \"n\": [1, 2, {\"a\": \"b\"}]}");
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) out = itk_template_render(&fx->scope, node, &error);
        g_autoptr(JsonNode) number = parse("3");
        g_autoptr(JsonNode) number_out = itk_template_render(&fx->scope, number, &error);

        g_assert_no_error(error);
        g_assert_true(out == node);
        g_assert_true(number_out == number);
}

static void
test_template_errors(void)
{
        g_autoptr(Fixture) fx = fixture_new();
        g_autoptr(JsonNode) nested = parse("{\"a\": [\"ok {{ n }}\", {\"b\": \"{{ missing }}\"}]}");
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) out = NULL;

        assert_render_fails(fx, "{{ missing }}", "unknown parameter 'missing'");
        assert_render_fails(fx, "x {{ parameter.missing }}", "unknown parameter 'missing'");
        assert_render_fails(fx, "{{ variable.missing }}", "unknown variable 'missing'");
        assert_render_fails(fx, "{{ step.later }}", "step 'later' has not run yet");
        assert_render_fails(fx, "{{ step.later.status }}", "step 'later' has not run yet");
        assert_render_fails(fx, "{{ step.nosuch }}", "unknown step 'nosuch'");
        assert_render_fails(fx, "{{ step.s2.status }}", "step 's2' output has no key 'status'");
        assert_render_fails(fx, "{{ step.s1.nokey }}", "step 's1' output has no key 'nokey'");
        assert_render_fails(fx, "{{ foo.bar }}", "unknown reference kind 'foo' in '{{ foo.bar }}'");
        assert_render_fails(fx, "a {{foo.bar.baz}} b",
                            "unknown reference kind 'foo' in '{{ foo.bar.baz }}'");
        assert_render_fails(fx, "{{ parameter.o.nokey }}", "parameter 'o' has no key 'nokey'");
        assert_render_fails(fx, "{{ parameter.n.k }}", "parameter 'n' has no key 'k'");
        assert_render_fails(fx, "{{ variable.count.k }}", "variable 'count' has no key 'k'");

        /* Without known_steps, any step id may yet run. */
        fx->scope.known_steps = NULL;
        assert_render_fails(fx, "{{ step.nosuch }}", "step 'nosuch' has not run yet");

        /* With nothing in scope at all. */
        fx->scope.parameters = NULL;
        fx->scope.variables = NULL;
        fx->scope.step_outputs = NULL;
        assert_render_fails(fx, "{{ n }}", "unknown parameter 'n'");
        assert_render_fails(fx, "{{ variable.count }}", "unknown variable 'count'");
        assert_render_fails(fx, "{{ step.s1 }}", "step 's1' has not run yet");

        /* A failure deep inside a tree fails the whole render. */
        fx->scope.parameters = fx->parameters;
        out = itk_template_render(&fx->scope, nested, &error);
        g_assert_null(out);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_REFERENCE);
        g_assert_cmpstr(error->message, ==, "unknown parameter 'missing'");
}

static void
test_template_credentials(void)
{
        g_autoptr(Fixture) fx = fixture_new();

        assert_renders(fx, "{{ credential.gw.username }}", "\"admin\"");
        assert_renders(fx, "{{ credential.gw.gateway_url }}/x", "\"http://gw:8088/x\"");
        /* Non-secret fields are not reported. */
        g_assert_cmpuint(fx->secrets->len, ==, 0);

        assert_renders(fx, "{{ credential.gw.password }}", "\"s3cret-pw\"");
        g_assert_cmpuint(fx->secrets->len, ==, 1);
        g_assert_cmpstr(g_ptr_array_index(fx->secrets, 0), ==, "s3cret-pw");
        assert_renders(fx, "Bearer {{ credential.gw.api_token }}", "\"Bearer tok-123456\"");
        g_assert_cmpuint(fx->secrets->len, ==, 2);
        g_assert_cmpstr(g_ptr_array_index(fx->secrets, 1), ==, "tok-123456");

        assert_render_fails(fx, "{{ credential.gw }}",
                            "credential reference '{{ credential.gw }}' needs a field "
                            "(username, password, gateway_url, api_token or description)");
        assert_render_fails(fx, "{{ credential.gw.secret }}",
                            "unknown credential field 'secret' in '{{ credential.gw.secret }}'");
        assert_render_fails(fx, "{{ credential.gw.description }}",
                            "credential 'gw' has no description");
        /* The lookup's message, as a reference error. */
        assert_render_fails(fx, "{{ credential.other.password }}", "no credential named 'other'");

        /* No credential store at all. */
        fx->scope.credential_lookup = NULL;
        assert_render_fails(fx, "{{ credential.gw.username }}", "unknown credential 'gw'");
        g_assert_cmpuint(fx->secrets->len, ==, 2);
}

static void
test_template_credential_parameter(void)
{
        g_autoptr(Fixture) fx = fixture_new();
        g_autoptr(JsonNode) as_object = parse("{\"credential\": \"gw\"}");

        /* Whole: the credential itself, for handlers that accept one. */
        assert_renders(fx, "{{ cred }}", "{\"credential\":\"gw\"}");
        assert_renders(fx, "{{ parameter.cred }}", "{\"credential\":\"gw\"}");
        g_assert_cmpuint(fx->lookups, ==, 0);
        /* Inside text: an error, never a name or a secret. */
        assert_render_fails(fx, "user {{ cred }}",
                            "credential parameter 'cred' cannot be used inside text; reference "
                            "one of its fields, e.g. '{{ parameter.cred.username }}'");
        /* Its fields, as the compat playbooks write them. */
        assert_renders(fx, "u={{ parameter.cred.username }}", "\"u=admin\"");
        g_assert_cmpuint(fx->secrets->len, ==, 0);
        assert_renders(fx, "{{ parameter.cred.password }}", "\"s3cret-pw\"");
        g_assert_cmpuint(fx->secrets->len, ==, 1);
        g_assert_cmpstr(g_ptr_array_index(fx->secrets, 0), ==, "s3cret-pw");
        assert_render_fails(fx, "{{ parameter.cred.bogus }}",
                            "unknown credential field 'bogus' in '{{ parameter.cred.bogus }}'");
        assert_render_fails(fx, "{{ parameter.badcred.username }}", "no credential named 'nope'");

        /* A parameter already bound as {"credential": name} works the same. */
        json_object_set_member(fx->parameters, "cred", json_node_ref(as_object));
        assert_renders(fx, "{{ cred }}", "{\"credential\":\"gw\"}");
        assert_renders(fx, "{{ parameter.cred.username }}", "\"admin\"");
        json_object_set_int_member(fx->parameters, "cred", 3);
        assert_render_fails(fx, "{{ cred }}",
                            "credential parameter 'cred' does not name a credential");
}

static void
test_template_collect(void)
{
        g_autoptr(JsonNode) node = parse(
                "{\"{{ key.ref }}\": \"{{ a }} {{ parameter.b }} {{ variable.c.k }}\","
                "\"l\": [\"{{ credential.gw.password }}\", \"{{ step.s1 }}{{ step.s2.k }}\","
                "\"{{ unknown.kind }} {{ credential.nofield }} {{ a.b.c.d }} {{ color: red; }}\"],"
                "\"n\": 5}");
        g_autoptr(GPtrArray) refs = itk_template_collect(node);
        struct {
                ItkRefKind kind;
                const char *name;
                const char *field;
        } expected[] = {
                { ITK_REF_PARAMETER, "a", NULL },
                { ITK_REF_PARAMETER, "b", NULL },
                { ITK_REF_VARIABLE, "c", "k" },
                { ITK_REF_CREDENTIAL, "gw", "password" },
                { ITK_REF_STEP, "s1", NULL },
                { ITK_REF_STEP, "s2", "k" },
                { ITK_REF_CREDENTIAL, "nofield", NULL },
        };
        g_autoptr(GPtrArray) none = itk_template_collect(NULL);

        g_assert_cmpuint(refs->len, ==, G_N_ELEMENTS(expected));
        for (guint i = 0; i < refs->len; i++) {
                ItkRef *ref = g_ptr_array_index(refs, i);
                g_assert_cmpint(ref->kind, ==, expected[i].kind);
                g_assert_cmpstr(ref->name, ==, expected[i].name);
                g_assert_cmpstr(ref->field, ==, expected[i].field);
        }
        g_assert_cmpuint(none->len, ==, 0);
}

static void
assert_check_fails(const char *json, const char *message)
{
        g_autoptr(JsonNode) node = parse(json);
        g_autoptr(GError) error = NULL;

        g_assert_false(itk_template_check(node, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_REFERENCE);
        g_assert_cmpstr(error->message, ==, message);
}

static void
test_template_check(void)
{
        g_autoptr(JsonNode) good =
                parse("{\"{{ bad.key }}\": [\"{{ a }} {{ parameter.x.y }} {{ variable.v }}\","
                      "\"{{ step.s.k }} {{ credential.c.api_token }} {{ color: red; }}\","
                      "\"{{ a.b.c.d }}\"]}");
        g_autoptr(GError) error = NULL;

        /* Keys are not references; CSS and four parts are text. */
        g_assert_true(itk_template_check(good, &error));
        g_assert_no_error(error);
        g_assert_true(itk_template_check(NULL, &error));

        assert_check_fails("[\"{{ a }}\", {\"x\": \"t {{ params.x }} {{ other.y }}\"}]",
                           "unknown reference kind 'params' in '{{ params.x }}'");
        assert_check_fails("\"{{credential.c}}\"",
                           "credential reference '{{ credential.c }}' needs a field "
                           "(username, password, gateway_url, api_token or description)");
        assert_check_fails("{\"p\": \"{{ credential.c.pass }}\"}",
                           "unknown credential field 'pass' in '{{ credential.c.pass }}'");
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/template/grammar", test_template_grammar);
        g_test_add_func("/template/whole-keeps-type", test_template_whole_keeps_type);
        g_test_add_func("/template/embedded-text", test_template_embedded_text);
        g_test_add_func("/template/literal", test_template_literal);
        g_test_add_func("/template/recursion", test_template_recursion);
        g_test_add_func("/template/no-reference-shared", test_template_no_reference_shared);
        g_test_add_func("/template/errors", test_template_errors);
        g_test_add_func("/template/credentials", test_template_credentials);
        g_test_add_func("/template/credential-parameter", test_template_credential_parameter);
        g_test_add_func("/template/collect", test_template_collect);
        g_test_add_func("/template/check", test_template_check);
        return g_test_run();
}
