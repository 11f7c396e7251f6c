// screens/settings.js - who you are, your integrations (GitHub) and how
// the service is doing.

import { api } from "../api.js";
import { githubState, isCloud, onSession, refreshSession, signOut } from "../auth.js";
import { ago, el, replaceChildren } from "../dom.js";
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

export function render(main, { session, signal }) {
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
					githubCard(session, signal)))));
}
