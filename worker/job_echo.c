/* job_echo.c - the echo job: prints args.lines, waiting args.delay_ms
 * between them, then exits with args.exit_code. It needs no Docker, so
 * tests and anyonctl can drive the whole job pipeline with it: its output
 * goes through the same writer as a container's (services/output.h), so
 * it is masked, batched and held to the output quotas, and it marks the
 * bytes it printed as the writer's offset. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/jobkinds.h"
#include "services/output.h"
#include "base/json.h"
#include "worker/worker.h"

#define TICK_MS 50

/* Sleeps ms, letting the writer flush what is due meanwhile. */
static enum checkpoint sleep_ticking(struct job_run *run, struct output_writer *out, long ms)
{
	enum checkpoint cp = job_checkpoint(run);

	while (cp == CP_CONTINUE && ms > 0) {
		long slice = ms < TICK_MS ? ms : TICK_MS;

		cp = job_sleep(run, slice);
		ms -= slice;
		if (cp == CP_CONTINUE && output_tick(out))
			cp = CP_LOST;
	}
	return cp;
}

void job_exec_echo(struct job_run *run, struct job_result *res)
{
	const char *stream = "stdout";
	json_object *args = NULL, *lines;
	struct output_limits lim;
	struct output_writer *out;
	int64_t delay = 0, code = 0, printed = 0;
	char err[256];

	/* The database is not trusted either: validate again. */
	if (json_parse(run->job->args, strlen(run->job->args), &args, err, sizeof(err)) ||
	    jobkind_validate("echo", args, err, sizeof(err))) {
		res->exit_code = 2;
		snprintf(res->error, sizeof(res->error), "bad arguments: %.200s", err);
		json_object_put(args);
		return;
	}
	json_object_object_get_ex(args, "lines", &lines);
	json_get_i64(args, "delay_ms", &delay);
	json_get_i64(args, "exit_code", &code);
	json_get_str(args, "stream", &stream);
	output_limits_default(&lim);
	out = output_open(run->db, run->job->id, run->job->user_id, run->owner, NULL, &lim, err, sizeof(err));
	if (!out) {
		res->exit_code = 1;
		snprintf(res->error, sizeof(res->error), "%.200s", err);
		json_object_put(args);
		return;
	}

	for (size_t i = 0; i < json_object_array_length(lines); i++) {
		json_object *l = json_object_array_get_idx(lines, i);
		size_t len = (size_t)json_object_get_string_len(l);
		enum output_stream st = strcmp(stream, "stderr") == 0 ? OUTPUT_STDERR : OUTPUT_STDOUT;

		if (i > 0 && delay > 0)
			res->stop = sleep_ticking(run, out, (long)delay);
		else
			res->stop = job_checkpoint(run);
		if (res->stop != CP_CONTINUE)
			goto out;
		if (output_write(out, st, json_object_get_string(l), len) || output_write(out, st, "\n", 1)) {
			res->stop = CP_LOST;
			goto out;
		}
		printed += (int64_t)len + 1;
		output_mark(out, printed);
	}
	res->exit_code = (int)code;
	if (code)
		snprintf(res->error, sizeof(res->error), "exited with status %d", (int)code);
out:
	/* What was printed is stored before the worker's own closing lines. */
	if (res->stop != CP_LOST && output_close(out))
		res->stop = CP_LOST;
	output_free(out);
	json_object_put(args);
}
