/* job_attempt.c - the executors of job kinds "attempt" and "pull_request"
 * (services/attempts.h). A placeholder until the runner lands: both fail
 * the job at once. */
#include "autoconfig.h"

#include <stdio.h>

#include "worker/worker.h"

void job_exec_attempt(struct job_run *run, struct job_result *res)
{
	(void)run;
	res->exit_code = 1;
	snprintf(res->error, sizeof(res->error), "not implemented yet");
}

void job_exec_pull_request(struct job_run *run, struct job_result *res)
{
	(void)run;
	res->exit_code = 1;
	snprintf(res->error, sizeof(res->error), "not implemented yet");
}
