/* job_echo.c - the echo job: prints args.lines, one chunk each, waiting
 * args.delay_ms between them, then exits with args.exit_code. It needs no
 * Docker, so tests and anyonctl can drive the whole job pipeline with it. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/jobkinds.h"
#include "base/json.h"
#include "worker/worker.h"

void job_exec_echo(struct job_run *run, struct job_result *res)
{
	const char *stream = "stdout";
	json_object *args = NULL, *lines;
	int64_t delay = 0, code = 0;
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

	for (size_t i = 0; i < json_object_array_length(lines); i++) {
		json_object *l = json_object_array_get_idx(lines, i);
		size_t len = (size_t)json_object_get_string_len(l);
		char *line;

		if (i > 0 && delay > 0)
			res->stop = job_sleep(run, (long)delay);
		else
			res->stop = job_checkpoint(run);
		if (res->stop != CP_CONTINUE)
			goto out;
		line = malloc(len + 1);
		if (!line) {
			res->exit_code = 1;
			snprintf(res->error, sizeof(res->error), "out of memory");
			goto out;
		}
		memcpy(line, json_object_get_string(l), len);
		line[len] = '\n';
		if (job_write(run, stream, line, len + 1)) {
			free(line);
			res->stop = CP_LOST;
			goto out;
		}
		free(line);
	}
	res->exit_code = (int)code;
	if (code)
		snprintf(res->error, sizeof(res->error), "exited with status %d", (int)code);
out:
	json_object_put(args);
}
