#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

static const char *log_prog = "anyon";
static enum log_level log_min = LOG_INFO;

static const char *const level_names[] = {
	[LOG_DEBUG] = "debug",
	[LOG_INFO] = "info",
	[LOG_WARN] = "warn",
	[LOG_ERROR] = "error",
};

void log_init(const char *prog)
{
	const char *lvl = getenv("ANYON_LOG_LEVEL");

	log_prog = prog;
	if (!lvl)
		return;
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(lvl, level_names[i]) == 0)
			log_min = (enum log_level)i;
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char stamp[32], line[2048];
	time_t now = time(NULL);
	struct tm tm;
	int n;

	if (level < log_min)
		return;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(line, sizeof(line), "%s %s[%ld] %s: ", stamp, log_prog,
		     (long)getpid(), level_names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	/* One write per line so lines from several processes do not mix. */
	fprintf(stderr, "%s\n", line);
	fflush(stderr);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}

void write_pid_file(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		die("cannot write pid file '%s': %s", path, strerror(errno));
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f))
		die("cannot write pid file '%s': %s", path, strerror(errno));
}
