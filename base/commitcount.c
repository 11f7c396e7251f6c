/* commitcount.c - the host's shared count of commits (see commitcount.h). */
#include "autoconfig.h"

#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/commitcount.h"

_Atomic uint64_t *commit_count_map(const char *data_dir, bool create)
{
	static _Atomic uint64_t *mapped;
	char path[PATH_MAX];
	struct stat st;
	void *p;
	int fd;

	if (mapped)
		return mapped;
	if (snprintf(path, sizeof(path), "%s/commit-count", data_dir) >= (int)sizeof(path))
		return NULL;
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);
	if (fd < 0)
		return NULL;
	/* Two processes making it at once both see a short file and both
	 * grow it to the same size: harmless. Never shrunk. */
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    (st.st_size < (off_t)sizeof(uint64_t) && ftruncate(fd, sizeof(uint64_t)))) {
		close(fd);
		return NULL;
	}
	p = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return NULL;
	mapped = p;
	return mapped;
}

void commit_count_bump(void *arg)
{
	atomic_fetch_add((_Atomic uint64_t *)arg, 1);
}
