/* claude_login.h - the Claude CLI's sign-in seen from outside its TTY
 * (issue 11): what its screen asks for (services side of
 * /api/auth/claude/login), the worker's redaction of the token it prints,
 * and the sealing of what the user types into it.
 *
 * The CLI runs under a TTY: its output is one raw stream, terminal
 * sequences and all, and long lines come wrapped at the terminal's width
 * (the authorize URL, the token). Parsing works on the raw bytes: CSI
 * sequences are skipped, a run of URL or token characters goes on on the
 * next line when that line holds nothing but such characters. */
#ifndef ANYON_SERVICES_CLAUDE_LOGIN_H
#define ANYON_SERVICES_CLAUDE_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/keyring.h"

#define CLAUDE_SCREEN_CHOICES_MAX 9
#define CLAUDE_CHOICE_LABEL_MAX 160
#define CLAUDE_URL_MAX 4096
#define CLAUDE_TOKEN_MAX 1024
/* What one POST .../input may carry, and how many wait undelivered. */
#define CLAUDE_INPUT_MAX 2048
#define CLAUDE_INPUTS_QUEUED_MAX 16
/* The most output a login may print (its screens are small). */
#define CLAUDE_LOGIN_OUTPUT_MAX (256 * 1024)
#define CLAUDE_PROMPT "Paste code here if prompted >"

struct claude_choice {
	int number;                               /* as printed: "1." */
	char label[CLAUDE_CHOICE_LABEL_MAX];      /* the rest of the line, CSI removed */
};

/* What the screen asks for, from the output so far. */
struct claude_screen {
	char url[CLAUDE_URL_MAX];                 /* the last authorize URL, joined; "" none */
	struct claude_choice choices[CLAUDE_SCREEN_CHOICES_MAX];
	int n_choices;                            /* numbered lines after the last "Select ..." line
						   * with no URL after them */
	bool needs_code;                          /* the last thing printed is CLAUDE_PROMPT */
	bool success;                             /* "Login successful" or "token created successfully" */
};

/* Reads the screen out of len bytes of output. Never fails. */
void claude_screen_parse(const char *p, size_t len, struct claude_screen *out);

/* The redactor the worker passes the CLI's raw output through before
 * the output writer: every "sk-ant-..." token (joined across wrapped
 * lines) and every literal registered with claude_redact_add() (what was
 * typed, echoed by the TTY) become MASK_REPLACEMENT. Bytes that may begin
 * one are held back until decided. Tokens found are reported, joined. */
struct claude_redactor {
	char *held;                               /* owned, wiped: undecided bytes */
	size_t len, cap;
	char *lit[CLAUDE_INPUTS_QUEUED_MAX];      /* owned, wiped: literals */
	size_t lit_len[CLAUDE_INPUTS_QUEUED_MAX];
	int n_lit;
};

typedef int (*claude_out_fn)(void *arg, const void *p, size_t len);
typedef void (*claude_token_fn)(void *arg, const char *token, size_t len);

void claude_redact_init(struct claude_redactor *r);
/* Adds a literal to mask (copied). Shorter than 8 bytes: ignored (it
 * would mask ordinary text). 0, or -1 when full or out of memory. */
int claude_redact_add(struct claude_redactor *r, const void *p, size_t len);
/* Feeds raw output; at_end: nothing follows (decides everything held).
 * Returns 0, or -1 when out failed, memory ran out or more than
 * CLAUDE_LOGIN_OUTPUT_MAX bytes are held. */
int claude_redact_feed(struct claude_redactor *r, const void *p, size_t len, bool at_end,
		       claude_out_fn out, claude_token_fn found, void *arg);
/* Wipes and frees what it holds. */
void claude_redact_release(struct claude_redactor *r);

/* What the user typed, sealed for the row that queues it (AAD binds user
 * and login): ct gets len bytes. 0, or -1 (no active key, crypto). */
int claude_input_seal(struct keyring *kr, int64_t user_id, int64_t login_id, const void *pt, size_t len,
		      char key_id[16], unsigned char nonce[12], unsigned char *ct, unsigned char tag[16]);
/* Opens it into pt (len bytes). 0, or -1 (wiped). */
int claude_input_open(struct keyring *kr, int64_t user_id, int64_t login_id, const char *key_id,
		      const unsigned char nonce[12], const unsigned char *ct, size_t len,
		      const unsigned char tag[16], unsigned char *pt);

#endif
