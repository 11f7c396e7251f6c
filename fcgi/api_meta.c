/* api_meta.c - GET /api/meta: the server's vocabularies (task statuses,
 * executors (the executors table: name, label, the secret kind it
 * needs or null), job kinds, secret kinds, the mode), so the web UI
 * copies none of them. */
#include "autoconfig.h"

#include "base/config.h"
#include "base/json.h"
#include "fcgi/api.h"
#include "services/jobkinds.h"
#include "services/secrets.h"
#include "services/tasks.h"

static json_object *strings(const char *const *list)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; list[i]; i++)
		json_object_array_add(a, json_object_new_string(list[i]));
	return a;
}

static int add_executor(const struct db_executor *e, void *arg)
{
	json_object *o = json_object_new_object();

	json_set(o, "name", json_str(e->name));
	json_set(o, "label", json_str(e->label));
	json_set(o, "credential", e->credential[0] ? json_str(e->credential) : NULL);
	return json_object_array_add(arg, o) ? -1 : 0;
}

void api_meta(struct req *r)
{
	json_object *body = json_object_new_object(), *kinds = json_object_new_array(),
		    *secrets = json_object_new_array(), *executors;
	const struct jobkind *all;
	const char *k;
	size_t n;

	executors = json_object_new_array();
	if (db_executor_list(r->db, add_executor, executors)) {
		json_object_put(executors);
		json_object_put(body);
		json_object_put(kinds);
		json_object_put(secrets);
		reply_error(r, 500, "internal", "reading the executors failed");
		return;
	}
	all = jobkind_all(&n);
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_new_object();

		json_set(o, "name", json_object_new_string(all[i].name));
		json_set(o, "needs_docker", json_object_new_boolean((all[i].needs & NEED_DOCKER) != 0));
		/* made by anyon itself (an attempt's run), not by POST /api/jobs */
		json_set(o, "internal", json_object_new_boolean(all[i].internal));
		json_object_array_add(kinds, o);
	}
	for (size_t i = 0; (k = secret_kind_at(i)); i++) {
		json_object *o = json_object_new_object();

		json_set(o, "kind", json_object_new_string(k));
		json_set(o, "settable", json_object_new_boolean(secret_kind_settable(k)));
		json_object_array_add(secrets, o);
	}
	json_set(body, "mode", json_object_new_string(g_config.cloud ? "cloud" : "local"));
	json_set(body, "task_statuses", strings(task_statuses));
	json_set(body, "executors", executors);
	json_set(body, "job_kinds", kinds);
	json_set(body, "secret_kinds", secrets);
	reply_json(r, 200, body);
}
