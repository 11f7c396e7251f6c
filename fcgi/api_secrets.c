/* api_secrets.c - the caller's secrets: metadata only, never values. */
#include "autoconfig.h"

#include <string.h>

#include <openssl/crypto.h>

#include "base/json.h"
#include "services/secrets.h"
#include "base/util.h"
#include "fcgi/api.h"

#define SECRET_VALUE_MAX 4096

static json_object *secret_json(const struct db_secret *s)
{
	json_object *o = json_object_new_object();

	json_set(o, "kind", json_str(s->kind));
	json_set(o, "key_id", json_str(s->key_id));
	json_set(o, "created_at", json_object_new_int64(s->created_at));
	json_set(o, "updated_at", json_object_new_int64(s->updated_at));
	json_set(o, "last_used_at", json_i64_or_null(s->last_used_at, s->last_used_at > 0));
	json_set(o, "expires_at", json_i64_or_null(s->expires_at, s->expires_at > 0));
	json_set(o, "invalid", json_object_new_boolean(s->invalid));
	return o;
}

static int list_one(const struct db_secret *s, void *arg)
{
	return json_object_array_add(arg, secret_json(s));
}

void api_secrets_list(struct req *r)
{
	json_object *list = json_object_new_array(), *body;

	if (db_secret_list(r->db, r->user.id, list_one, list)) {
		json_object_put(list);
		reply_error(r, 500, "internal", "listing secrets failed");
		return;
	}
	body = json_object_new_object();
	json_set(body, "secrets", list);
	reply_json(r, 200, body);
}

/* A token-like value: printable ASCII without spaces. */
static bool value_ok(const char *v, size_t len)
{
	if (len == 0 || len > SECRET_VALUE_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (v[i] <= ' ' || v[i] > '~')
			return false;
	return true;
}

/* json-c frees without wiping: wipe the value in the parsed body, on
 * every path (a refused request may carry a real secret too). */
static void wipe_value(json_object *json)
{
	json_object *v;

	if (json && json_object_object_get_ex(json, "value", &v) && json_object_is_type(v, json_type_string))
		OPENSSL_cleanse((char *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
}

void api_secrets_put(struct req *r)
{
	const char *kind = route_param(&r->params, "kind");
	json_object *v, *body;
	struct db_secret meta;

	if (!kind || !secret_kind_ok(kind)) {
		reply_error(r, 404, "not_found", "no such secret kind");
	} else if (!secret_kind_settable(kind)) {
		reply_error(r, 403, "not_settable", "this secret is set by its sign-in flow, not by hand");
	} else if (!json_object_object_get_ex(r->json, "value", &v) ||
		   !json_object_is_type(v, json_type_string)) {
		reply_error(r, 400, "invalid_field", "'value' must be a string");
	} else if (!value_ok(json_object_get_string(v), (size_t)json_object_get_string_len(v))) {
		reply_error(r, 400, "invalid_field",
			    "'value' must be 1 to %d printable characters without spaces", SECRET_VALUE_MAX);
	} else if (secret_put_meta(r->secrets, r->user.id, kind, json_object_get_string(v),
				   (size_t)json_object_get_string_len(v), 0, r->session.id, &meta) != SECRET_OK) {
		reply_error(r, 500, "internal", "storing the secret failed");
	} else {
		body = json_object_new_object();
		json_set(body, "secret", secret_json(&meta));
		reply_json(r, 200, body);
	}
	wipe_value(r->json);
}

void api_secrets_delete(struct req *r)
{
	const char *kind = route_param(&r->params, "kind");
	json_object *body;
	int rc;

	if (!kind || !secret_kind_ok(kind)) {
		reply_error(r, 404, "not_found", "no such secret kind");
		return;
	}
	rc = secret_delete(r->secrets, r->user.id, kind, r->session.id);
	if (rc == SECRET_NOTFOUND) {
		reply_error(r, 404, "not_found", "no %s is stored", kind);
		return;
	}
	if (rc != SECRET_OK) {
		reply_error(r, 500, "internal", "deleting the secret failed");
		return;
	}
	body = json_object_new_object();
	json_set(body, "deleted", json_str(kind));
	reply_json(r, 200, body);
}
