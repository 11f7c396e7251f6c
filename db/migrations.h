/* migrations.h - the schema migrations compiled into the programs, one
 * list per dialect. Both lists carry the same versions and names (a unit
 * test checks it): migration N does the same thing on either engine. */
#ifndef ANYON_MIGRATIONS_H
#define ANYON_MIGRATIONS_H

#include <stddef.h>

struct migration {
	int version;        /* NNN of NNN_name.sql; strictly increasing */
	const char *name;   /* file name */
	const char *sql;    /* the whole file */
};

extern const struct migration migrations_sqlite[];
extern const size_t migrations_sqlite_count;
extern const struct migration migrations_postgresql[];
extern const size_t migrations_postgresql_count;

#endif
