/* log.h - one line per event on stderr, never a secret.
 *
 * Lines look like "2026-11-24T14:31:17Z anyon-fcgi[123] warn: message".
 * Callers must not pass secret values (tokens, keys, credentials) in the
 * format arguments; the leak tests grep every log file for them.
 */
#ifndef ANYON_LOG_H
#define ANYON_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the program name shown on each line and the minimum level
 * (ANYON_LOG_LEVEL=debug|info|warn|error, default info). */
void log_init(const char *prog);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Logs at error level and exits with status 1. Only for start-up, never
 * inside a request handler or the worker's job loop. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Writes the process id to path, or dies. Start-up only. */
void write_pid_file(const char *path);

#endif
