// screens/board.js - the board: the user's projects.
//
// Lists GET /api/projects as cards (#project-list; each card carries
// data-project-id and, for GitHub projects, data-full-name); a card's name
// is a link to its project screen (#/project/<id>). In cloud mode more are
// imported from GitHub (#import-open opens the dialog of import.js). In
// local mode #project-add opens the "Add project" dialog: a git repository
// on the server's disk (its path) or a git URL, POST /api/projects; an
// error naming a field (error.field) is shown next to that field. The list
// reloads after an import or an add, and on project.* events of the change
// feed (store.js), so a project removed in another tab goes away here too.

import { api } from "../api.js";
import { isCloud } from "../auth.js";
import { modal } from "../dialog.js";
import { ago, el, replaceChildren } from "../dom.js";
import { clearErrors, field, fieldError } from "../form.js";
import { githubMark } from "../github.js";
import { openImport, privateBadge } from "../import.js";
import { onEvents } from "../store.js";
import { toastError, toastSuccess } from "../toast.js";

export function projectHref(p) {
	return "#/project/" + encodeURIComponent(String(p.id));
}

function projectCard(p) {
	const full = p.github_full_name || "";
	const where = full ? el("p", { class: "project-full mono" }, githubMark(), full)
		: p.location ? el("p", { class: "project-full mono", title: p.location }, p.location) : null;
	return el("li", { class: "project-card card", dataset: { fullName: full, projectId: String(p.id) } },
		el("div", { class: "project-head" },
			el("h3", { class: "project-name" },
				el("a", { class: "project-link", href: projectHref(p) }, p.name)),
			p.private ? privateBadge() : null),
		where,
		// Only GitHub has descriptions; a local repository's card goes without.
		full || p.description ? el("p", { class: "project-desc" + (p.description ? "" : " muted") },
			p.description || "No description.") : null,
		el("p", { class: "project-meta" },
			p.base_branch || p.default_branch ? el("span", { class: "branch mono", title: "Base branch" },
				p.base_branch || p.default_branch) : null,
			p.created_at ? el("span", { class: "muted" }, "added " + ago(p.created_at)) : null));
}

// The "Add project" dialog (local mode). onAdded(project) after a 201.
export function openAddProject({ onAdded } = {}) {
	if (modal.isOpen("add-project-dialog"))
		return;
	const d = modal({ id: "add-project-dialog", title: "Add project" });
	const radio = (value, label, checked) => el("label", { class: "check" },
		el("input", { type: "radio", name: "add-project-source", value, checked,
			id: "add-project-source-" + value }), label);
	const sourceGroup = el("div", { class: "segmented", role: "radiogroup", "aria-labelledby": "add-project-source-label" },
		radio("path", "A path on this machine", true), radio("url", "A git URL", false));
	const sourceError = el("p", { id: "add-project-source-error", class: "hint error-text field-error", hidden: true });
	const source = {
		control: sourceGroup,
		setError(m) {
			sourceError.textContent = m || "";
			sourceError.hidden = !m;
		},
	};
	const repo = field({ id: "add-project-location", label: "Repository",
		control: el("input", { type: "text", autocomplete: "off", spellcheck: "false", autofocus: true,
			required: true, class: "mono" }),
		hint: "An absolute path to a git repository on the server, e.g. /home/me/src/widget." });
	const name = field({ id: "add-project-name", label: "Name (optional)",
		control: el("input", { type: "text", autocomplete: "off" }),
		hint: "Defaults to the last part of the path or URL." });
	const general = el("p", { id: "add-project-error", class: "callout callout-warn", role: "alert", hidden: true });
	const submit = el("button", { class: "btn btn-primary", type: "submit", id: "add-project-submit" }, "Add project");
	const hintFor = {
		path: "An absolute path to a git repository on the server, e.g. /home/me/src/widget.",
		url: "An https:// git URL, without a user name or password.",
	};
	const fields = { source, path: repo, url: repo, name };
	const chosen = () => sourceGroup.querySelector("input:checked").value;
	sourceGroup.addEventListener("change", () => {
		repo.node.querySelector(".hint:not(.field-error)").textContent = hintFor[chosen()];
		repo.setError(null);
	});

	const form = el("form", { class: "form", id: "add-project-form", novalidate: true },
		el("div", { class: "field" },
			el("span", { class: "label", id: "add-project-source-label" }, "Source"),
			sourceGroup, sourceError),
		repo.node,
		name.node,
		general,
		el("div", { class: "form-actions" }, submit));
	form.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		clearErrors({ repo, name }, general);
		source.setError(null);
		const kind = chosen();
		const value = repo.control.value.trim();
		if (!value) {
			repo.setError(kind === "path" ? "Give the repository's path." : "Give the repository's URL.");
			repo.control.focus();
			return;
		}
		const body = { source: kind, [kind]: value };
		if (name.control.value.trim())
			body.name = name.control.value.trim();
		submit.disabled = true;
		submit.textContent = "Adding\u2026";
		try {
			const r = await api.post("/api/projects", body, { toast: false });
			d.close();
			toastSuccess("Added " + r.project.name);
			onAdded?.(r.project);
		} catch (err) {
			fieldError(fields, err, general);
		} finally {
			submit.disabled = false;
			submit.textContent = "Add project";
		}
	});
	d.body.append(form);
	d.open();
}

export function render(main, { session, signal }) {
	const cloud = isCloud(session);
	let projects = [];
	const list = el("ul", { id: "project-list", class: "project-grid", "aria-label": "Projects", "aria-busy": "true" });
	const count = el("span", { class: "count muted", id: "project-count" });
	let actions;
	let emptyText;
	let emptyButton;
	if (cloud) {
		const openDialog = () => openImport({
			imported: new Set(projects.map((p) => p.github_full_name).filter(Boolean)),
			onImported: () => refresh(),
		});
		actions = el("button", { id: "import-open", class: "btn btn-primary", type: "button",
			on: { click: openDialog } }, githubMark(), "Import from GitHub");
		emptyText = "Import a repository from GitHub to start.";
		emptyButton = el("button", { class: "btn", type: "button", id: "import-open-empty",
			on: { click: openDialog } }, githubMark(), "Import from GitHub");
	} else {
		const openDialog = () => openAddProject({ onAdded: (p) => { location.hash = projectHref(p); } });
		actions = el("button", { id: "project-add", class: "btn btn-primary", type: "button",
			on: { click: openDialog } }, "Add project");
		emptyText = "Add a git repository from this machine, or any git URL, to start.";
		emptyButton = el("button", { class: "btn", type: "button", id: "project-add-empty",
			on: { click: openDialog } }, "Add project");
	}
	const empty = el("div", { class: "card empty", id: "board-empty", hidden: true, "data-testid": "board-empty" },
		el("div", { class: "empty-art", "aria-hidden": "true" }, el("span"), el("span"), el("span")),
		el("h2", { text: "No projects yet" }),
		el("p", { class: "muted" }, emptyText),
		el("p", {}, emptyButton));

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
					el("p", { class: "muted" }, cloud ? "Your projects, imported from GitHub."
						: "Your projects: git repositories on this machine or at a git URL. " +
						  "(GitHub import is for cloud mode.)")),
				el("div", { class: "screen-actions" }, actions)),
			list,
			empty));
	onEvents((events) => {
		if (events.some((e) => e.kind.startsWith("project.")))
			refresh();
	}, signal).then(() => {
		if (!signal.aborted)
			refresh();
	});
	return null;
}
