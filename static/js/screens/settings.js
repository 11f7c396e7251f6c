// screens/settings.js - who you are, your integrations (GitHub, Claude)
// and how the service is doing.

import { api } from "../api.js";
import { githubState, isCloud, onSession, refreshSession, signOut } from "../auth.js";
import { claudeCard } from "../claude.js";
import { absTime, ago, el, replaceChildren } from "../dom.js";
import { githubMark, openDeviceFlow } from "../github.js";
import { onHealth } from "../health.js";
import { toastSuccess } from "../toast.js";

function row(label, ...value) {
	return [el("dt", {}, label), el("dd", {}, ...value)];
}

function status(ok, text, testid) {
	return el("span", { class: "status", dataset: { ok: String(ok) }, "data-testid": testid },
		el("span", { class: "status-dot", "aria-hidden": "true" }), text);
}

function sessionCard(s) {
	const card = el("section", { class: "card", "aria-labelledby": "settings-session-title" },
		el("h2", { id: "settings-session-title", text: "Session" }));
	if (!s) {
		card.append(el("p", { class: "muted" }, "The session could not be loaded."));
		return card;
	}
	const cloud = !!(s.features && s.features.cloud);
	const u = s.user;
	const dl = el("dl", { class: "facts", id: "settings-session" },
		u ? [
			row("Login", el("span", { class: "mono" }, u.login)),
			row("Name", u.name || "\u2014"),
			row("Role", u.is_admin ? "Administrator" : "Member"),
			row("User id", el("span", { class: "mono" }, String(u.id))),
		] : row("User", "not signed in"),
		row("Mode", cloud ? "Cloud \u2014 people sign in with GitHub"
			: "Local \u2014 one implicit user, no sign-in"));
	card.append(dl);
	return card;
}

const GH_TEXT = {
	connected: (login) => login ? `Connected as ${login}` : "Connected",
	disconnected: () => "Not connected",
	invalid: () => "Token invalid \u2014 sign in again",
};

// The GitHub card: #gh-card-state (data-state connected|disconnected|invalid),
// #gh-connect, #gh-disconnect and, in cloud mode, #settings-signout.
function githubCard(session, signal) {
	const state = el("span", { id: "gh-card-state", class: "conn-state", role: "status" });
	const detail = el("p", { class: "muted small integration-detail" });
	const actions = el("div", { class: "integration-actions" });
	const card = el("section", { id: "gh-card", class: "card integration", "aria-labelledby": "gh-card-title" },
		el("div", { class: "integration-head" },
			el("span", { class: "integration-logo", "aria-hidden": "true" }, githubMark()),
			el("div", { class: "integration-title" },
				el("h3", { id: "gh-card-title" }, "GitHub"),
				state)),
		detail,
		actions);
	let s = session;
	let busy = false;

	function draw() {
		const cloud = isCloud(s);
		const { state: st, login } = githubState(s);
		card.dataset.state = st;
		state.dataset.state = st;
		replaceChildren(state, el("span", { class: "conn-dot", "aria-hidden": "true" }), GH_TEXT[st](login));
		detail.textContent = st === "connected"
			? (cloud ? "anyon lists and imports your repositories with this account."
				: "anyon may use this account to reach your repositories.")
			: st === "invalid"
				? "GitHub refused the token anyon holds for you: it expired or was revoked. Sign in again to use your repositories."
				: cloud ? "Connect GitHub to list and import your repositories."
					: "The local user may connect a GitHub account for private repositories.";

		const connect = el("button", { id: "gh-connect", class: "btn btn-primary", type: "button", disabled: busy,
			hidden: st === "connected" },
			githubMark(), st === "invalid" ? "Sign in again" : "Connect GitHub");
		connect.addEventListener("click", () => openDeviceFlow({
			purpose: st === "invalid" ? "relogin" : "connect",
			onComplete: (ns) => { s = ns; draw(); },
		}));
		const disconnect = el("button", { id: "gh-disconnect", class: "btn btn-danger", type: "button", disabled: busy,
			hidden: st === "disconnected" }, "Disconnect");
		disconnect.addEventListener("click", async () => {
			busy = true;
			draw();
			try {
				await api.delete("/api/auth/github");
				toastSuccess("GitHub disconnected");
				s = await refreshSession();
			} catch {
				// api.js showed why
			}
			busy = false;
			draw();
		});
		const out = cloud && s && s.user
			? el("button", { id: "settings-signout", class: "btn", type: "button", disabled: busy }, "Sign out")
			: null;
		out?.addEventListener("click", async () => {
			busy = true;
			draw();
			try {
				await signOut();
			} catch {
				busy = false;
				draw();
			}
		});
		const focused = document.activeElement && actions.contains(document.activeElement)
			? document.activeElement.id : null;
		replaceChildren(actions, connect, disconnect, el("span", { class: "spacer" }), out);
		if (focused)
			document.getElementById(focused)?.focus();
	}

	draw();
	onSession((ns) => {
		if (ns) {
			s = ns;
			draw();
		}
	}, signal);
	// The cached session may be older than what GitHub said since.
	if (s && s.user) {
		api.get("/api/auth/github/status", { toast: false, signal }).then((g) => {
			s = { ...s, github: g };
			draw();
		}, () => {});
	}
	return card;
}

const CRED_LABELS = {
	anthropic_api_key: "Anthropic API key",
	github_pat: "GitHub personal access token",
	github_token: "GitHub token (from sign-in)",
	github_refresh_token: "GitHub refresh token",
	claude_credential: "Claude credential",
};
const CRED_SETTABLE = new Set(["anthropic_api_key", "github_pat"]);

// The Credentials card (#cred-card): the metadata of GET /api/secrets as
// rows [data-kind], never a value; #cred-anthropic + #cred-anthropic-save
// set the Anthropic API key; #cred-delete-<kind> asks "Remove?" inline
// (#cred-delete-<kind>-yes / -no) before DELETE /api/secrets/<kind>.
function credentialsCard(signal) {
	const list = el("ul", { id: "cred-list", class: "cred-list" },
		el("li", { class: "muted" }, "Loading\u2026"));
	const input = el("input", { type: "password", id: "cred-anthropic", autocomplete: "off",
		spellcheck: "false", placeholder: "sk-ant-\u2026" });
	const save = el("button", { id: "cred-anthropic-save", class: "btn btn-primary", type: "submit" }, "Save");
	const form = el("form", { id: "cred-form", class: "cred-form" },
		el("label", { for: "cred-anthropic" }, "Set or replace the Anthropic API key"),
		el("div", { class: "cred-form-row" }, input, save));
	const card = el("section", { id: "cred-card", class: "card", "aria-labelledby": "cred-card-title" },
		el("h3", { id: "cred-card-title" }, "Credentials"),
		el("p", { class: "muted small" }, "Values are encrypted at rest and never shown again."),
		list,
		form);
	let confirming = null;
	let secrets = null;

	function when(label, t) {
		return t ? `${label} ${ago(t)}` : null;
	}

	function draw() {
		if (secrets === null)
			return;
		if (!secrets.length) {
			replaceChildren(list, el("li", { id: "cred-empty", class: "muted" }, "No credentials stored"));
			return;
		}
		replaceChildren(list, secrets.map((sec) => {
			const kind = sec.kind;
			const facts = [
				when("updated", sec.updated_at),
				sec.last_used_at ? when("last used", sec.last_used_at) : "never used",
				sec.expires_at ? "expires " + absTime(sec.expires_at) : null,
			].filter(Boolean).join(" \u00b7 ");
			let action = null;
			if (CRED_SETTABLE.has(kind) && confirming === kind) {
				const yes = el("button", { id: `cred-delete-${kind}-yes`, class: "btn btn-sm btn-danger", type: "button" }, "Yes");
				const no = el("button", { id: `cred-delete-${kind}-no`, class: "btn btn-sm", type: "button" }, "No");
				yes.addEventListener("click", () => remove(kind));
				no.addEventListener("click", () => { confirming = null; draw(); document.getElementById(`cred-delete-${kind}`)?.focus(); });
				action = el("span", { class: "cred-confirm", role: "group", "aria-label": "Confirm removal" },
					el("span", { class: "small" }, "Remove?"), yes, no);
			} else if (CRED_SETTABLE.has(kind)) {
				action = el("button", { id: `cred-delete-${kind}`, class: "btn btn-sm btn-danger", type: "button",
					"aria-label": "Remove " + (CRED_LABELS[kind] || kind) }, "Remove");
				action.addEventListener("click", () => {
					confirming = kind;
					draw();
					document.getElementById(`cred-delete-${kind}-no`)?.focus();
				});
			}
			return el("li", { class: "cred-row", dataset: { kind, invalid: String(!!sec.invalid) } },
				el("div", { class: "cred-info" },
					el("span", { class: "cred-label" }, CRED_LABELS[kind] || kind,
						sec.invalid ? el("span", { class: "cred-invalid small" }, "invalid") : null),
					el("span", { class: "muted small" }, facts)),
				action);
		}));
	}

	async function load() {
		try {
			const r = await api.get("/api/secrets", { signal });
			secrets = (r && r.secrets) || [];
			draw();
		} catch (err) {
			if (err && err.name === "AbortError")
				return;
			replaceChildren(list, el("li", { class: "muted" }, "The credentials could not be loaded."));
		}
	}

	async function remove(kind) {
		try {
			await api.delete("/api/secrets/" + encodeURIComponent(kind), { signal });
			toastSuccess((CRED_LABELS[kind] || kind) + " removed");
		} catch {
			// api.js showed why
		}
		confirming = null;
		await load();
	}

	form.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const value = input.value;
		if (!value)
			return;
		save.disabled = true;
		try {
			await api.put("/api/secrets/anthropic_api_key", { value }, { signal });
			input.value = "";
			input.removeAttribute("aria-invalid");
			toastSuccess("Anthropic API key saved");
			window.dispatchEvent(new CustomEvent("anyon:credentials-changed"));
		} catch (err) {
			// api.js toasted the server's message
			if (err && err.status === 400)
				input.setAttribute("aria-invalid", "true");
		}
		save.disabled = false;
	});

	load();
	onSession((ns) => { if (ns) load(); }, signal);
	// The Claude card sets the API key and connects Claude too.
	window.addEventListener("anyon:credentials-changed", load, { signal });
	window.addEventListener("anyon:claude-changed", load, { signal });
	return card;
}

// Settings -> Sessions: the user's own sessions, this one marked, each
// revocable, and "sign out all other sessions". #sessions-list holds one
// li.session-row per session (data-current="true" for this browser).
function sessionsCard(signal) {
	const list = el("ul", { id: "sessions-list", class: "cred-list" },
		el("li", { class: "muted" }, "Loading\u2026"));
	const others = el("button", { id: "sessions-revoke-others", class: "btn btn-sm", type: "button" },
		"Sign out all other sessions");
	const card = el("section", { id: "sessions-card", class: "card", "aria-labelledby": "sessions-card-title" },
		el("div", { class: "card-head" },
			el("h3", { id: "sessions-card-title" }, "Sessions"),
			others),
		el("p", { class: "muted small" },
			"Every browser signed in as you. A session you do not recognise \u2014 for example after " +
			"entering a sign-in code someone else sent you \u2014 should be signed out here."),
		list);

	async function load() {
		try {
			const r = await api.get("/api/sessions", { signal });
			const rows = (r && r.sessions) || [];
			others.disabled = rows.length < 2;
			replaceChildren(list, rows.map((x) => {
				const facts = [x.address || "unknown address", "signed in " + ago(x.created_at),
					"last seen " + ago(x.last_seen_at)].join(" \u00b7 ");
				let action;
				if (x.current) {
					action = el("span", { class: "badge", "data-testid": "session-current" }, "This browser");
				} else {
					action = el("button", { class: "btn btn-sm btn-danger session-revoke", type: "button",
						dataset: { id: String(x.id) }, "aria-label": "Sign out session " + x.id }, "Sign out");
					action.addEventListener("click", () => revoke(x.id));
				}
				return el("li", { class: "cred-row session-row", dataset: { current: String(!!x.current), id: String(x.id) } },
					el("div", { class: "cred-info" },
						el("span", { class: "cred-label session-browser" }, x.browser || "Unknown browser"),
						el("span", { class: "muted small" }, facts)),
					action);
			}));
		} catch (err) {
			if (err && err.name === "AbortError")
				return;
			replaceChildren(list, el("li", { class: "muted" }, "The sessions could not be loaded."));
		}
	}

	async function revoke(id) {
		try {
			await api.delete("/api/sessions/" + encodeURIComponent(String(id)), { signal });
			toastSuccess("Session signed out");
		} catch {
			// api.js showed why
		}
		await load();
	}

	others.addEventListener("click", async () => {
		others.disabled = true;
		try {
			const r = await api.post("/api/sessions/revoke-others", undefined, { signal });
			toastSuccess(`Signed out ${r.revoked} other session${r.revoked === 1 ? "" : "s"}`);
		} catch {
			// api.js showed why
		}
		await load();
	});

	load();
	onSession((ns) => { if (ns && ns.user) load(); }, signal);
	return card;
}

function healthCard(signal) {
	const body = el("div", {}, el("p", { class: "muted" }, "Checking\u2026"));
	const checked = el("span", { class: "muted small" });
	const card = el("section", { class: "card", "aria-labelledby": "settings-health-title" },
		el("div", { class: "card-head" },
			el("h2", { id: "settings-health-title", text: "Health" }),
			checked),
		body);

	onHealth(({ health, error, state, problems, at }) => {
		checked.textContent = "checked " + new Date(at).toLocaleTimeString();
		if (!health) {
			replaceChildren(body,
				status(false, "Unavailable \u2014 " + (error ? error.message : "no answer"), "health-api"));
			return;
		}
		if (health.db === undefined) {
			// An answer from before sign-in: up or down, no details yet.
			replaceChildren(body, status(state === "ok",
				state === "ok" ? "Up (details at the next check)" : "Down", "health-api"));
			return;
		}
		const wasOpen = !!body.querySelector("details.raw")?.open;
		const beat = health.worker ? health.worker.last_heartbeat_s : null;
		const beatText = beat === null || beat === undefined ? "no heartbeat yet"
			: "heartbeat " + ago(Date.now() / 1000 - beat);
		replaceChildren(body,
			el("p", { class: "health-summary", dataset: { state } },
				state === "ok" ? "Everything is running." : problems.join("; ")),
			el("dl", { class: "facts", id: "settings-health" },
				row("Database", status(health.db === "ok", health.db, "health-db")),
				row("Worker", status(beat !== null && beat !== undefined && state !== "down" &&
					!problems.some((p) => p.startsWith("worker")), beatText, "health-worker")),
				row("Docker", status(health.docker === "ok", health.docker, "health-docker")),
				row("Version", el("span", { class: "mono" }, String(health.version ?? "?")))),
			el("details", { class: "raw", open: wasOpen },
				el("summary", {}, "Raw answer of GET /api/health"),
				el("pre", { class: "code" }, JSON.stringify(health, null, 2))));
	}, signal);
	return card;
}

// #/settings/claude, and the older #/settings/credentials (the task and
// attempt screens' "Connect Claude"), scroll to the Claude card and put the
// focus on it.
export function render(main, { session, params, signal }) {
	replaceChildren(main,
		el("section", { class: "screen", "aria-labelledby": "settings-title" },
			el("header", { class: "screen-head" },
				el("h1", { id: "settings-title", text: "Settings" }),
				el("p", { class: "muted" }, "Your session, your integrations and the state of this anyon server.")),
			el("div", { class: "settings-grid" },
				sessionCard(session),
				healthCard(signal)),
			el("section", { class: "settings-section", "aria-labelledby": "integrations-title" },
				el("h2", { id: "integrations-title", class: "section-title" }, "Integrations"),
				el("div", { class: "integrations-grid" },
					githubCard(session, signal),
					claudeCard(signal),
					credentialsCard(signal))),
			el("section", { class: "settings-section", "aria-labelledby": "security-title" },
				el("h2", { id: "security-title", class: "section-title" }, "Security"),
				sessionsCard(signal))));
	if (params && (params[0] === "claude" || params[0] === "credentials")) {
		const card = document.getElementById("claude-card");
		card?.scrollIntoView({ block: "center" });
		// After the router's own focus on <main> (app.js), which follows render().
		setTimeout(() => {
			if (!signal.aborted)
				card?.focus({ preventScroll: true });
		}, 0);
	}
}
