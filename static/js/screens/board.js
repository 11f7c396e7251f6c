// screens/board.js - the board: the user's projects.
//
// In cloud mode it lists GET /api/projects as cards (#project-list, each
// with data-full-name) and imports more from GitHub (#import-open opens the
// dialog of import.js; the list refreshes after an import). In local mode
// GitHub import is off, and the board says so honestly.

import { api } from "../api.js";
import { isCloud } from "../auth.js";
import { ago, el, replaceChildren } from "../dom.js";
import { githubMark } from "../github.js";
import { openImport, privateBadge } from "../import.js";
import { toastError } from "../toast.js";

function placeholder() {
	return el("div", { class: "card empty", "data-testid": "board-empty" },
		el("div", { class: "empty-art", "aria-hidden": "true" },
			el("span"), el("span"), el("span")),
		el("h2", { text: "No projects yet" }),
		el("p", { class: "muted" },
			"Projects and tasks arrive with GitHub import."),
		el("p", {},
			el("a", { class: "btn", href: "#/jobs" }, "Try the job runner")));
}

function projectCard(p) {
	const full = p.github_full_name || "";
	return el("li", { class: "project-card card", dataset: { fullName: full, projectId: String(p.id) } },
		el("div", { class: "project-head" },
			el("h3", { class: "project-name" }, p.name),
			p.private ? privateBadge() : null),
		full ? el("p", { class: "project-full mono" }, githubMark(), full) : null,
		el("p", { class: "project-desc" + (p.description ? "" : " muted") },
			p.description || "No description."),
		el("p", { class: "project-meta" },
			p.default_branch ? el("span", { class: "branch mono", title: "Default branch" }, p.default_branch) : null,
			p.created_at ? el("span", { class: "muted" }, "added " + ago(p.created_at)) : null));
}

export function render(main, { session, signal }) {
	if (!isCloud(session) || !session.user) {
		replaceChildren(main,
			el("section", { class: "screen", "aria-labelledby": "board-title" },
				el("header", { class: "screen-head" },
					el("h1", { id: "board-title", text: "Board" })),
				placeholder()));
		return null;
	}

	let projects = [];
	const list = el("ul", { id: "project-list", class: "project-grid", "aria-label": "Projects", "aria-busy": "true" });
	const empty = el("div", { class: "card empty", id: "board-empty", hidden: true, "data-testid": "board-empty" },
		el("div", { class: "empty-art", "aria-hidden": "true" }, el("span"), el("span"), el("span")),
		el("h2", { text: "No projects yet" }),
		el("p", { class: "muted" }, "Import a repository from GitHub to start."),
		el("p", {}, el("button", { class: "btn", type: "button", id: "import-open-empty",
			on: { click: openDialog } }, githubMark(), "Import from GitHub")));
	const count = el("span", { class: "count muted", id: "project-count" });
	const open = el("button", { id: "import-open", class: "btn btn-primary", type: "button",
		on: { click: openDialog } }, githubMark(), "Import from GitHub");

	function openDialog() {
		openImport({
			imported: new Set(projects.map((p) => p.github_full_name).filter(Boolean)),
			onImported: () => refresh(),
		});
	}

	async function refresh() {
		let all = [];
		try {
			// Pages of at most 200 (and 1 MiB); follow next_before, bounded.
			let path = "/api/projects?limit=200";
			for (let page = 0; path && page < 50; page++) {
				const r = await api.get(path, { toast: false, signal });
				all = all.concat(r.projects || []);
				path = r.next_before ? "/api/projects?limit=200&before=" + r.next_before : null;
			}
		} catch (err) {
			if (err.name === "AbortError")
				return;
			list.setAttribute("aria-busy", "false");
			toastError("Could not load projects: " + err.message, { code: err.code });
			return;
		}
		projects = all;
		list.setAttribute("aria-busy", "false");
		replaceChildren(list, projects.map(projectCard));
		empty.hidden = projects.length > 0;
		list.hidden = projects.length === 0;
		count.textContent = projects.length ? String(projects.length) : "";
	}

	replaceChildren(main,
		el("section", { class: "screen", "aria-labelledby": "board-title" },
			el("header", { class: "screen-head screen-head-row" },
				el("div", {},
					el("h1", { id: "board-title" }, "Board ", count),
					el("p", { class: "muted" }, "Your projects, imported from GitHub.")),
				el("div", { class: "screen-actions" }, open)),
			list,
			empty));
	refresh();
	return null;
}
