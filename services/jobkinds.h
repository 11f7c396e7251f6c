/* jobkinds.h - the kinds of job the worker runs, and validation of their
 * arguments, shared by the API (which refuses bad args up front) and the
 * worker (which trusts nothing in the database either). */
#ifndef ANYON_JOBKINDS_H
#define ANYON_JOBKINDS_H

#include <stddef.h>

#include <json-c/json.h>

/* Limits of the echo job (no Docker; for tests and anyonctl). */
#define ECHO_MAX_LINES 1000
#define ECHO_MAX_LINE 4096
#define ECHO_MAX_DELAY_MS 10000

/* Returns 0 when kind is known and args (a JSON object) are valid for it;
 * otherwise -1 with a message in err naming the bad field. */
int jobkind_validate(const char *kind, json_object *args, char *err, size_t errlen);

#endif
