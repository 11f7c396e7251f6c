// screens/settings.js - who you are and how the service is doing.

import { ago, el, replaceChildren } from "../dom.js";
import { onHealth } from "../health.js";

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
				el("p", { class: "muted" }, "Your session and the state of this anyon server.")),
			el("div", { class: "settings-grid" },
				sessionCard(session),
				healthCard(signal))));
}
