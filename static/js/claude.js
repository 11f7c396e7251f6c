// claude.js - connecting Claude: the Settings card, the sign-in dialog that
// bridges the Claude CLI running in a container to the page, and the
// re-login banner.
//
//   card = claudeCard(signal)               // Settings -> Integrations
//   openClaudeLogin({ onDone })             // the dialog, from anywhere
//   watchClaudeCredential()                 // once per tab (app.js)
//
// The API (issue 11):
//   GET    /api/auth/claude/status  {connected, method, created_at, expires_at?, invalid, last_error?}
//   DELETE /api/auth/claude
//   POST   /api/auth/claude/login {method: "setup-token"|"interactive"} -> {login_id}
//   GET    /api/auth/claude/login/{id}?after=SEQ
//          -> {state, chunks, next_after?, job_id?, authorize_url?, choices?, needs_code?, error?}
//   POST   /api/auth/claude/login/{id}/input {text}
//   POST   /api/auth/claude/login/{id}/cancel
// and, for "use an Anthropic API key instead", PUT /api/secrets/anthropic_api_key.
//
// The card (#claude-card, data-state connected|disconnected|invalid|unknown,
// data-source "status", or "secrets" when the server has no status endpoint
// and the card read the secret store's metadata instead): #claude-card-state,
// #claude-facts (dd[data-fact=method|since|expires|error]), #claude-invalid
// (the call to sign in again), #claude-connect, #claude-disconnect (asks
// with #claude-disconnect-confirm), and the API-key form #claude-apikey
// (#claude-apikey-input, #claude-apikey-save, #claude-apikey-state). It
// reloads on the change feed's credential.invalid and on the window
// events anyon:claude-changed and anyon:credentials-changed.
//
// The dialog (#claude-login): first the method (#claude-method-setup-token,
// recommended, or #claude-method-interactive) and #claude-login-start; then
// #claude-login-status [data-state], the CLI's screen #claude-login-term
// (ansi.js), #claude-login-open (a link to the authorization URL, new
// window, noopener) with the URL as text in #claude-login-url, the choices
// on screen as buttons #claude-login-choices button[data-choice=N] (the
// number and Enter go to the CLI), the code form #claude-login-code-form
// (#claude-login-code, #claude-login-code-send: the field is emptied when
// the code is sent, nothing keeps it), #claude-login-result [data-result
// succeeded|failed|cancelled], #claude-login-cancel and #claude-login-close.
// Closing the dialog while the sign-in runs cancels it.
//
// Following a login: GET .../login/{id}?after=SEQ, again after every
// answer. When the answer names the login's job (job_id) the wait between
// asks is long and the change feed's job.* events of that job cut it short;
// otherwise any job.* event of the user does, and the wait is shorter. An
// input cuts it short too. The poll stays modest (Claude's sign-in is not
// under nginx's sign-in rate, but the pool is shared); a 429 backs off.

import { api } from "./api.js";
import { ansiScreen } from "./ansi.js";
import { absTime, ago, el, replaceChildren } from "./dom.js";
import { confirmDialog, modal } from "./dialog.js";
import { setPill, statePill } from "./pill.js";
import { poll } from "./poll.js";
import { onEvents, watchFeed } from "./store.js";
import { toastSuccess } from "./toast.js";

// Where the Claude card is (screens/settings.js scrolls to it). The older
// "#/settings/credentials" leads there too.
export const CLAUDE_HREF = "#/settings/claude";

const METHOD_WORDS = {
	"setup-token": "Long-lived token (claude setup-token)",
	token: "Token",
	interactive: "Claude.ai sign-in",
	oauth: "Claude.ai sign-in",
	api_key: "Anthropic API key",
	anthropic_api_key: "Anthropic API key",
};
const FINAL = new Set(["succeeded", "failed", "cancelled", "canceled", "timed_out", "timeout", "expired", "error", "lost"]);
const STATE_WORDS = {
	starting: "Starting the Claude CLI\u2026",
	queued: "Starting the Claude CLI\u2026",
	running: "The Claude CLI is running",
	succeeded: "Connected",
	failed: "The sign-in failed",
	cancelled: "Cancelled",
	canceled: "Cancelled",
	timed_out: "The sign-in timed out",
	timeout: "The sign-in timed out",
	expired: "The sign-in timed out",
};
const POLL_MS = 1500;          // no job to watch on the feed
const POLL_FEED_MS = 5000;     // the feed's job events wake it sooner
const CODE_MAX = 4096;         // characters of a pasted code
const TERMS_URL = "https://www.anthropic.com/legal/consumer-terms";

const changed = () => window.dispatchEvent(new CustomEvent("anyon:claude-changed"));

function errorText(e) {
	if (!e)
		return "";
	if (typeof e === "string")
		return e;
	return String(e.message || e.code || JSON.stringify(e));
}

// A URL the page may open: https only (the CLI prints Anthropic's page).
function safeUrl(u) {
	if (typeof u !== "string" || !u)
		return null;
	try {
		const url = new URL(u);
		return url.protocol === "https:" ? url.href : null;
	} catch {
		return null;
	}
}

// choices as the server lists them -> [{value, label}]: strings like
// "1. Claude account with subscription", or objects {number|n|key|value, label|text}.
export function normaliseChoices(list) {
	if (!Array.isArray(list))
		return [];
	return list.slice(0, 20).map((c, i) => {
		if (c && typeof c === "object") {
			const value = String(c.number ?? c.n ?? c.key ?? c.value ?? i + 1);
			return { value, label: String(c.label ?? c.text ?? value) };
		}
		const s = String(c);
		const m = /^\s*(\d+)[.)]\s*(.*)$/.exec(s);
		return m ? { value: m[1], label: m[2] || m[1] } : { value: String(i + 1), label: s };
	}).filter((c) => /^[0-9]{1,2}$/.test(c.value));
}

// The status: GET /api/auth/claude/status; when the server has no such
// endpoint (404), what the secret store's metadata says.
async function loadStatus(signal) {
	const secrets = await api.get("/api/secrets", { toast: false, signal }).then((r) => r.secrets || [], () => null);
	const apiKey = secrets ? secrets.find((x) => x.kind === "anthropic_api_key") || null : undefined;
	try {
		const st = await api.get("/api/auth/claude/status", { toast: false, signal });
		return { st, apiKey, source: "status" };
	} catch (err) {
		if (err.name === "AbortError" || err.status !== 404 || !secrets)
			throw err;
		// As the server's status: the Claude credential, else the API key.
		const cred = secrets.find((x) => x.kind === "claude_credential") || apiKey;
		return {
			st: cred ? { connected: true, method: cred === apiKey ? "api_key" : null, created_at: cred.updated_at,
				expires_at: cred.expires_at, invalid: !!cred.invalid } : { connected: false, invalid: false },
			apiKey, source: "secrets",
		};
	}
}

function fact(name, label, value) {
	return [el("dt", {}, label), el("dd", { dataset: { fact: name } }, value)];
}

function claudeMark() {
	return el("span", { class: "claude-mark" }, "\u2733");
}

export function claudeCard(signal) {
	const state = el("span", { id: "claude-card-state", class: "conn-state", role: "status" },
		el("span", { class: "conn-dot", "aria-hidden": "true" }), "Loading\u2026");
	const detail = el("p", { class: "muted small integration-detail" });
	const facts = el("dl", { id: "claude-facts", class: "facts small", hidden: true });
	const invalid = el("p", { id: "claude-invalid", class: "callout callout-warn small", role: "alert", hidden: true });
	const connect = el("button", { id: "claude-connect", class: "btn btn-primary", type: "button", hidden: true },
		"Connect Claude");
	const disconnect = el("button", { id: "claude-disconnect", class: "btn btn-danger", type: "button", hidden: true },
		"Disconnect");
	const keyInput = el("input", { type: "password", id: "claude-apikey-input", autocomplete: "off",
		spellcheck: "false", placeholder: "sk-ant-\u2026", maxlength: "4096" });
	const keySave = el("button", { id: "claude-apikey-save", class: "btn", type: "submit" }, "Save key");
	const keyState = el("p", { id: "claude-apikey-state", class: "muted small" });
	const keyForm = el("form", { id: "claude-apikey-form", class: "cred-form" },
		el("label", { for: "claude-apikey-input" }, "Anthropic API key (from console.anthropic.com)"),
		el("div", { class: "cred-form-row" }, keyInput, keySave),
		keyState);
	const keyBox = el("details", { id: "claude-apikey", class: "claude-apikey" },
		el("summary", {}, "Use an Anthropic API key instead"),
		el("p", { class: "muted small" },
			"Attempts then bill your API account instead of your Claude subscription. The key is stored "
			+ "encrypted, like a sign-in, and only your own containers get it."),
		keyForm);
	const card = el("section", { id: "claude-card", class: "card integration", tabindex: "-1",
		"aria-labelledby": "claude-card-title", dataset: { state: "unknown" } },
	el("div", { class: "integration-head" },
		el("span", { class: "integration-logo", "aria-hidden": "true" }, claudeMark()),
		el("div", { class: "integration-title" },
			el("h3", { id: "claude-card-title" }, "Claude"),
			state)),
	detail, invalid, facts,
	el("div", { class: "integration-actions" }, connect, disconnect),
	keyBox);

	let loading = false, again = false;

	function draw({ st, apiKey, source }) {
		const s = !st.connected ? "disconnected" : st.invalid ? "invalid" : "connected";
		const byKey = st.connected && st.method === "api_key";
		const keyRefused = byKey && s === "invalid";
		card.dataset.state = s;
		card.dataset.method = st.method || "";
		card.dataset.source = source;
		state.dataset.state = s;
		replaceChildren(state, el("span", { class: "conn-dot", "aria-hidden": "true" }),
			s === "connected" ? "Connected" : s === "invalid" ? "Credential refused \u2014 sign in again" : "Not connected");
		detail.textContent = s === "disconnected"
			? "Attempts of the Claude executor need your Claude credential. Connect with your Claude "
				+ "subscription (the sign-in happens on Anthropic's own pages), or use an API key."
			: byKey
				? "Attempts of the Claude executor use your Anthropic API key (remove it under Credentials). "
					+ "Connect Claude to use your Claude subscription instead."
				: "Attempts of the Claude executor run with this credential, in your containers only.";
		invalid.hidden = s !== "invalid";
		if (keyRefused)
			invalid.textContent = "Anthropic refused your API key: it is wrong or was revoked. "
				+ "Save another key below, or connect Claude.";
		else if (s === "invalid")
			invalid.textContent = "Claude refused the credential anyon holds for you: it expired or was revoked. "
				+ "Attempts that need it fail until you sign in again.";
		else
			invalid.textContent = "";
		const rows = [];
		if (st.connected) {
			rows.push(fact("method", "Method", METHOD_WORDS[st.method] || st.method || "stored credential"));
			if (st.created_at)
				rows.push(fact("since", "Since", el("span", { title: absTime(st.created_at) }, ago(st.created_at))));
			rows.push(fact("expires", "Expires", st.expires_at ? absTime(st.expires_at) : "no expiry known"));
		}
		if (st.last_error) {
			const e = st.last_error;
			const what = typeof e === "object" && (e.kind || e.code) ? `${e.kind || e.code}: ` : "";
			const when = typeof e === "object" && e.at ? ` (${ago(e.at)})` : "";
			rows.push(fact("error", "Last error", el("span", { id: "claude-last-error" }, what + errorText(e) + when)));
		}
		replaceChildren(facts, rows);
		facts.hidden = rows.length === 0;
		connect.hidden = s === "connected" && !byKey;
		connect.textContent = s === "invalid" && !keyRefused ? "Sign in again" : "Connect Claude";
		disconnect.hidden = s === "disconnected" || byKey;
		if (apiKey === undefined) {
			keyState.textContent = "";
		} else {
			keyState.textContent = apiKey
				? `An API key is stored (updated ${ago(apiKey.updated_at)})${apiKey.invalid ? ", refused by Anthropic" : ""}. `
					+ "Saving replaces it; remove it under Credentials."
				: "No API key stored.";
			keyState.dataset.stored = String(!!apiKey);
		}
	}

	async function load() {
		if (loading) {
			again = true;
			return;
		}
		loading = true;
		try {
			do {
				again = false;
				try {
					draw(await loadStatus(signal));
				} catch (err) {
					if (err.name === "AbortError" || signal?.aborted)
						return;
					card.dataset.state = "unknown";
					replaceChildren(state, el("span", { class: "conn-dot", "aria-hidden": "true" }),
						"Status unavailable");
					detail.textContent = "The Claude status could not be loaded: " + err.message;
					connect.hidden = false;
				}
			} while (again && !signal?.aborted);
		} finally {
			loading = false;
		}
	}

	connect.addEventListener("click", () => openClaudeLogin({ relogin: card.dataset.state === "invalid", onDone: load }));
	disconnect.addEventListener("click", async () => {
		const yes = await confirmDialog({
			id: "claude-disconnect-confirm", title: "Disconnect Claude?", danger: true, confirm: "Disconnect",
			message: "anyon forgets your Claude credential. Attempts of the Claude executor will need you to "
				+ "connect again. (The token itself stays valid at Anthropic until you revoke it there.)",
		});
		if (!yes)
			return;
		disconnect.disabled = true;
		try {
			await api.delete("/api/auth/claude", { signal });
			toastSuccess("Claude disconnected");
			changed();
		} catch {
			// api.js showed why
		}
		disconnect.disabled = false;
		load();
	});
	keyForm.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const value = keyInput.value.trim();
		if (!value)
			return;
		keySave.disabled = true;
		try {
			await api.put("/api/secrets/anthropic_api_key", { value }, { signal });
			keyInput.value = "";
			keyInput.removeAttribute("aria-invalid");
			toastSuccess("Anthropic API key saved");
			window.dispatchEvent(new CustomEvent("anyon:credentials-changed"));
		} catch (err) {
			if (err && err.status === 400)
				keyInput.setAttribute("aria-invalid", "true");
		}
		keySave.disabled = false;
	});
	window.addEventListener("anyon:claude-changed", load, { signal });
	window.addEventListener("anyon:credentials-changed", load, { signal });
	onEvents((events) => {
		if (events.some((e) => e.kind === "credential.invalid"))
			load();
	}, signal).then(() => load());
	return card;
}

// ---- the sign-in dialog ----

let openLogin = null; // the dialog showing, one at a time

export function openClaudeLogin({ relogin = false, onDone } = {}) {
	if (openLogin) {
		openLogin.dialog.querySelector("button:not([disabled])")?.focus();
		return;
	}
	const ctl = new AbortController();
	let loginId = null;
	let final = false;
	const d = modal({
		id: "claude-login", wide: true, backdropClose: false,
		title: relogin ? "Sign in to Claude again" : "Connect Claude",
		onClose: () => {
			openLogin = null;
			ctl.abort();
			if (loginId && !final) {
				api.post(`/api/auth/claude/login/${encodeURIComponent(loginId)}/cancel`, undefined, { toast: false })
					.catch(() => {});
			}
			if (loginId)
				onDone?.();
		},
	});
	openLogin = d;

	// --- phase 1: the method ---
	const radio = (value, checked) => el("input", { type: "radio", name: "claude-method", value,
		id: "claude-method-" + value, checked });
	const start = el("button", { id: "claude-login-start", class: "btn btn-primary", type: "submit" }, "Start sign-in");
	const startError = el("p", { id: "claude-login-start-error", class: "error-text small", role: "alert", hidden: true });
	const choose = el("form", { id: "claude-method-form", class: "claude-methods" },
		el("fieldset", {},
			el("legend", {}, "How should anyon hold your Claude credential?"),
			el("label", { class: "claude-method", for: "claude-method-setup-token" },
				radio("setup-token", true),
				el("span", {},
					el("strong", {}, "Long-lived token"), " ", el("span", { class: "badge" }, "recommended"),
					el("span", { class: "hint" },
						"Runs \u201cclaude setup-token\u201d: you sign in on Anthropic's page once and the CLI "
						+ "prints a token valid for about a year. No refresh token, so attempts running at the "
						+ "same time never race each other."))),
			el("label", { class: "claude-method", for: "claude-method-interactive" },
				radio("interactive", false),
				el("span", {},
					el("strong", {}, "Interactive sign-in"),
					el("span", { class: "hint" },
						"Runs the CLI's own login: it asks which account to use, then sends you to "
						+ "Anthropic's page. The credential file it writes is stored for you.")))),
		el("p", { class: "muted small" },
			"The unmodified Claude CLI runs in a container of its own; the sign-in completes on "
			+ "Anthropic's pages. The credential is stored encrypted, for you only, and used only in your "
			+ "containers. Anthropic's ",
			el("a", { href: TERMS_URL, target: "_blank", rel: "noopener noreferrer" }, "terms"),
			" govern how Claude.ai credentials may be used by other software."),
		startError,
		el("div", { class: "modal-actions" }, start));
	d.body.append(choose);

	// --- phase 2: the CLI ---
	const statusPill = statePill("starting", { id: "claude-login-status" }, STATE_WORDS.starting);
	const scr = ansiScreen({ id: "claude-login-term", label: "Output of the Claude CLI" });
	const openLink = el("a", { id: "claude-login-open", class: "btn btn-primary", target: "_blank",
		rel: "noopener noreferrer" }, "Open Anthropic's sign-in page \u2197");
	const urlText = el("code", { id: "claude-login-url", class: "claude-url" });
	const urlBox = el("div", { id: "claude-login-urlbox", class: "claude-step", hidden: true },
		el("p", { class: "small" }, "Sign in on Anthropic's page (a new window), then paste the code it shows below."),
		openLink, el("details", { class: "small" }, el("summary", {}, "The address"), urlText));
	const choices = el("div", { id: "claude-login-choices", class: "claude-step claude-choices", role: "group",
		"aria-label": "Choices on the CLI's screen", hidden: true });
	const codeInput = el("input", { id: "claude-login-code", type: "password", autocomplete: "off", spellcheck: "false",
		maxlength: String(CODE_MAX), placeholder: "Paste the code here" });
	const codeSend = el("button", { id: "claude-login-code-send", class: "btn btn-primary", type: "submit" }, "Send code");
	const codeForm = el("form", { id: "claude-login-code-form", class: "claude-step cred-form", hidden: true },
		el("label", { for: "claude-login-code" }, "The code from Anthropic's page"),
		el("div", { class: "cred-form-row" }, codeInput, codeSend));
	// For a prompt the page does not recognise ("Press Enter to continue").
	const enter = el("button", { id: "claude-login-enter", class: "btn btn-sm", type: "button", hidden: true },
		"Press Enter in the CLI");
	enter.addEventListener("click", () => send("\r"));
	const result = el("p", { id: "claude-login-result", class: "claude-result", role: "alert", hidden: true });
	const runError = el("p", { id: "claude-login-error", class: "error-text small", role: "status", hidden: true });
	const run = el("div", { id: "claude-login-run", class: "claude-run", hidden: true },
		el("div", { class: "claude-run-head" }, statusPill),
		scr.element, urlBox, choices, codeForm, el("div", {}, enter), result, runError);
	d.body.append(run);

	const cancel = el("button", { id: "claude-login-cancel", class: "btn btn-danger", type: "button", hidden: true },
		"Cancel sign-in");
	const close = el("button", { id: "claude-login-close", class: "btn", type: "button" }, "Close");
	d.foot.hidden = false;
	d.foot.append(el("span", { class: "spacer" }), cancel, close);
	close.addEventListener("click", () => d.close());

	let after = 0;
	let jobId = null;
	let wake = null;
	let shownChoices = "";

	const path = (tail = "") => `/api/auth/claude/login/${encodeURIComponent(loginId)}${tail}`;

	async function send(text) {
		runError.hidden = true;
		try {
			await api.post(path("/input"), { text }, { toast: false, signal: ctl.signal });
			return true;
		} catch (err) {
			if (err.name !== "AbortError") {
				runError.textContent = "Could not reach the CLI: " + err.message;
				runError.hidden = false;
			}
			return false;
		} finally {
			wake?.();
		}
	}

	function drawChoices(list) {
		const key = JSON.stringify(list);
		if (key === shownChoices)
			return;
		shownChoices = key;
		choices.hidden = list.length === 0;
		replaceChildren(choices, list.length ? el("p", { class: "small" }, "The CLI asks:") : null,
			list.map((c) => {
				const b = el("button", { class: "btn claude-choice", type: "button", dataset: { choice: c.value } },
					el("span", { class: "claude-choice-n" }, c.value), " ", c.label);
				b.addEventListener("click", async () => {
					for (const x of choices.querySelectorAll("button"))
						x.disabled = true;
					await send(c.value + "\r");
					for (const x of choices.querySelectorAll("button"))
						x.disabled = false;
				});
				return b;
			}));
	}

	function finish(r) {
		final = true;
		scr.finish("(the CLI printed nothing)");
		cancel.hidden = true;
		urlBox.hidden = true;
		choices.hidden = true;
		codeForm.hidden = true;
		codeInput.value = "";
		enter.hidden = true;
		const st = r.state;
		const ok = st === "succeeded";
		const cancelled = st === "cancelled" || st === "canceled";
		result.dataset.result = ok ? "succeeded" : cancelled ? "cancelled" : "failed";
		result.hidden = false;
		if (ok) {
			result.textContent = "Claude is connected. Attempts of the Claude executor will use this credential.";
			toastSuccess("Claude connected");
			banner?.remove();
			changed();
		} else if (cancelled) {
			result.textContent = "The sign-in was cancelled. Nothing was stored.";
		} else {
			const why = errorText(r.error) || errorText(r.last_error);
			result.textContent = (STATE_WORDS[st] || `The sign-in ended (${st})`) + ": "
				+ (why || "the CLI's output above says why.") + " Nothing was stored.";
		}
		close.focus();
	}

	function apply(r) {
		const chunks = Array.isArray(r.chunks) ? r.chunks : [];
		scr.write(chunks);
		if (typeof r.next_after === "number")
			after = r.next_after;
		else if (chunks.length && typeof chunks[chunks.length - 1].seq === "number")
			after = chunks[chunks.length - 1].seq;
		if (r.job_id !== undefined && r.job_id !== null)
			jobId = r.job_id;
		const st = String(r.state || "unknown");
		setPill(statusPill, st, STATE_WORDS[st] || st);
		if (FINAL.has(st) || r.done === true) {
			if (!r.more)
				finish(r);
			return;
		}
		const url = safeUrl(r.authorize_url);
		urlBox.hidden = !url;
		if (url) {
			openLink.href = url;
			urlText.textContent = url;
		}
		drawChoices(normaliseChoices(r.choices));
		const wasHidden = codeForm.hidden;
		codeForm.hidden = !r.needs_code;
		if (r.needs_code && wasHidden && !codeInput.value)
			codeInput.focus({ preventScroll: true });
	}

	function follow() {
		onEvents((events) => {
			if (events.some((e) => e.kind.startsWith("job.") && (jobId === null || e.subject === jobId)))
				wake?.();
		}, ctl.signal);
		poll({
			fn: (sig) => api.get(path(`?after=${after}`), { toast: false, signal: sig }),
			interval: (r) => (r && r.more ? 0 : jobId !== null ? POLL_FEED_MS : POLL_MS),
			onResult: apply,
			until: () => final,
			onError: (err) => {
				if (err.status === 404) {
					finish({ state: "failed", error: "this sign-in is gone (it timed out or was cancelled)" });
					return false;
				}
				runError.textContent = "Lost touch with the sign-in (" + err.message + "); trying again\u2026";
				runError.hidden = false;
				return true;
			},
			wake: (fn) => { wake = fn; },
			signal: ctl.signal,
		}).then(() => { runError.hidden = true; }, () => {});
	}

	choose.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const method = choose.querySelector("input[name=claude-method]:checked")?.value || "setup-token";
		start.disabled = true;
		startError.hidden = true;
		try {
			const r = await api.post("/api/auth/claude/login", { method }, { toast: false, signal: ctl.signal });
			loginId = String(r.login_id);
		} catch (err) {
			if (err.name === "AbortError")
				return;
			startError.textContent = "The sign-in could not start: " + err.message;
			startError.hidden = false;
			start.disabled = false;
			return;
		}
		choose.hidden = true;
		run.hidden = false;
		run.dataset.method = method;
		run.dataset.loginId = loginId;
		enter.hidden = false;
		cancel.hidden = false;
		d.setTitle(method === "setup-token" ? "Connect Claude: long-lived token" : "Connect Claude: sign in");
		follow();
	});

	codeForm.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const code = codeInput.value.trim();
		codeInput.value = ""; // sent or not, the page keeps no copy
		if (!code || code.length > CODE_MAX || /[\x00-\x1f\x7f]/.test(code))
			return;
		codeSend.disabled = true;
		await send(code + "\r");
		codeSend.disabled = false;
	});

	cancel.addEventListener("click", async () => {
		cancel.disabled = true;
		try {
			await api.post(path("/cancel"), undefined, { signal: ctl.signal });
		} catch {
			cancel.disabled = false; // api.js showed why
		}
		wake?.();
	});

	d.open();
}

// ---- the re-login banner ----

let banner = null;

function showBanner() {
	if (banner && banner.isConnected)
		return;
	const dismiss = el("button", { class: "btn btn-ghost btn-sm", type: "button", "aria-label": "Dismiss" }, "\u00d7");
	const link = el("a", { id: "claude-relogin-link", class: "btn btn-primary btn-sm", href: CLAUDE_HREF }, "Sign in again");
	banner = el("div", { id: "claude-relogin-banner", class: "banner banner-warn", role: "alert" },
		el("span", { class: "banner-text" },
			"Claude refused your credential: it expired or was revoked. Attempts that need it will fail until you sign in again."),
		link, dismiss);
	const hide = () => banner?.remove();
	dismiss.addEventListener("click", hide);
	link.addEventListener("click", hide);
	document.getElementById("main")?.before(banner);
}

// ---- the CLI banner: the worker found no working Claude Code CLI in
// the agent image (GET /api/health's claude_cli) ----

let cliBanner = null;

export function showCliProblem(health) {
	const cli = health && health.claude_cli;
	if (!cli || cli.ok !== false) {
		cliBanner?.remove();
		cliBanner = null;
		return;
	}
	if (cliBanner && cliBanner.isConnected)
		return;
	cliBanner = el("div", { id: "claude-cli-banner", class: "banner banner-warn", role: "alert" },
		el("span", { class: "banner-text" },
			"The worker cannot run the Claude Code CLI in the agent image" +
			(cli.error ? " (" + String(cli.error) + ")" : "") +
			": Claude attempts and sign-ins will fail until the image is fixed (see DEPLOYMENT, the agent image)."));
	document.getElementById("main")?.before(cliBanner);
}

// Once per tab: a credential.invalid event on the change feed (while any
// screen runs it) shows the banner, and the card, if shown, reloads.
export function watchClaudeCredential() {
	watchFeed((events) => {
		if (events.some((e) => e.kind === "credential.invalid")) {
			showBanner();
			changed();
		}
	});
}
