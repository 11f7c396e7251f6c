/* commitcount.h - one count of database commits shared by every process
 * of an install on this host.
 *
 * A 64-bit counter in a small file of the data dir (commit-count: it
 * outlives restarts of any one service, so the pool and the worker never
 * map two different files), mapped
 * shared by each process that commits (the pool's children, the worker and
 * its jobs, anyonctl) and bumped after each of their commits; a process
 * that keeps answers (fcgi/cache.c) reads it before each request and
 * forgets them when it moved. Reading and bumping are single atomic
 * operations on the mapping: no lock, no system call.
 */
#ifndef ANYON_BASE_COMMITCOUNT_H
#define ANYON_BASE_COMMITCOUNT_H

#include <stdbool.h>
#include <stdint.h>

/* Maps data_dir/commit-count, with create made (0600, as the services'
 * user) if missing; the same mapping for the rest of the process (and its
 * children after fork()). NULL when the folder or the file cannot be had
 * (nothing is logged here). anyonctl, which may run as root, only maps a
 * file the services made. */
_Atomic uint64_t *commit_count_map(const char *data_dir, bool create);
/* db_on_commit()'s hook: arg is a mapped count, bumped. */
void commit_count_bump(void *arg);

#endif
