/* legacy.h - one-time import of a vibe-kanban style config.json.
 *
 * The tokens (github.oauth_token, github.pat) move into the secret store;
 * the original file is kept as PATH.bak-<UTC time> (mode 0600) and PATH is
 * rewritten without them, atomically. Other fields stay. Running it again
 * finds nothing to move and changes nothing. */
#ifndef ANYON_LEGACY_H
#define ANYON_LEGACY_H

#include <stddef.h>

#include "services/secrets.h"

#define LEGACY_MAX_BYTES (1024 * 1024)

/* Imports path for the user with login (NULL: the local user; created when
 * missing). Returns the number of tokens moved (0: nothing to do), or -1
 * with a reason in msg, the file untouched. */
int legacy_import(struct secret_store *st, const char *path, const char *login,
		  char *msg, size_t msglen);

/* Imports $ANYON_LEGACY_CONFIG, if set, for the local user: what the
 * services do once at start. Logs the outcome; never fatal. */
void legacy_import_from_env(struct db *db, struct keyring *kr);

#endif
