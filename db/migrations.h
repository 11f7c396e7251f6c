/* migrations.h - the schema migrations compiled into the programs. */
#ifndef ANYON_MIGRATIONS_H
#define ANYON_MIGRATIONS_H

#include <stddef.h>

struct migration {
	int version;        /* NNN of NNN_name.sql; strictly increasing */
	const char *name;   /* file name */
	const char *sql;    /* the whole file */
};

extern const struct migration migrations[];
extern const size_t migrations_count;

#endif
