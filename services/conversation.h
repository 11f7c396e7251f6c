/* conversation.h - an executor's output turned into a conversation.
 *
 * Claude Code's `--output-format stream-json --verbose` prints one JSON
 * object a line: system/init (session_id, model, tools, cwd), assistant
 * (message.content[]: text, tool_use {id, name, input}, thinking), user
 * (message.content[]: tool_result {tool_use_id, content, is_error}) and a
 * final result (subtype, is_error, result, duration_ms, num_turns,
 * total_cost_usd, usage, session_id). The parser reads such bytes (as
 * stored: masked, possibly cut anywhere, possibly with other lines mixed
 * in, all untrusted) and builds entries for the UI; the raw log stays as
 * it was. A line that is not JSON, or JSON of an unknown shape, becomes a
 * "raw" entry: nothing is dropped silently, nothing makes it fail.
 *
 * Entry shapes (JSON objects, in output order; "offset" is the byte
 * offset of the line in the run's output):
 *   {"type":"init", "session_id", "model", "cwd", "tools":[...]}
 *   {"type":"text", "text"}                         assistant text
 *   {"type":"thinking", "text"}
 *   {"type":"tool_use", "id", "name", "input": {...}}
 *   {"type":"tool_result", "tool_use_id", "content": string, "is_error": bool}
 *   {"type":"result", "subtype", "is_error", "text", "duration_ms",
 *    "num_turns", "total_cost_usd", "session_id"}
 *   {"type":"raw", "text"}                          any other line
 * Strings are cut at CONV_TEXT_MAX bytes (on a UTF-8 boundary) with
 * "cut": true on the entry. */
#ifndef ANYON_CONVERSATION_H
#define ANYON_CONVERSATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define CONV_TEXT_MAX (64 * 1024)
#define CONV_LINE_MAX (4 * 1024 * 1024)   /* a longer line becomes a cut raw entry */
#define CONV_SESSION_MAX 128

struct conv_parser;

/* A parser whose entries start at byte base of the output. NULL: out of memory. */
struct conv_parser *conv_new(int64_t base);
/* Feeds the next bytes of output (any split). Complete lines become
 * entries. Returns 0, or -1 out of memory. */
int conv_feed(struct conv_parser *p, const void *data, size_t len);
/* Ends the input: a last line without its newline becomes an entry only
 * when final (the run ended); otherwise it is left for the next page and
 * *consumed (below) stops before it. */
void conv_finish(struct conv_parser *p, bool final);
/* The entries so far, a JSON array owned by the parser (get a reference
 * to keep it). */
json_object *conv_entries(struct conv_parser *p);
/* Bytes of input turned into entries (the offset to resume from, minus base). */
int64_t conv_consumed(const struct conv_parser *p);
/* The session id of the first init (or result) line, "" when none seen;
 * only [A-Za-z0-9_-] ids of at most CONV_SESSION_MAX bytes are taken. */
const char *conv_session_id(const struct conv_parser *p);
/* The result line, when one came: is_error and its text ("" when none). */
bool conv_result(const struct conv_parser *p, bool *is_error, const char **text);
/* Whether the run reported an authentication failure (the CLI's "Invalid
 * API key", "OAuth token has expired", "OAuth token revoked", "Failed to
 * authenticate", "Please run /login" in an error result or its text). */
bool conv_auth_failed(const struct conv_parser *p);
/* Whether the run ended on an error result that says Anthropic's API
 * failed or could not be reached (5xx, 429, overloaded, a connection
 * error, a timeout), as opposed to the credential being refused. */
bool conv_api_failed(const struct conv_parser *p);
/* Forgets the entries so far, keeping what the calls above report (the
 * worker watches a whole run for those alone). */
void conv_drop_entries(struct conv_parser *p);
void conv_free(struct conv_parser *p);

#endif
