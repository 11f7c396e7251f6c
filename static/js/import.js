// import.js - the "Import from GitHub" dialog (cloud mode only).
//
//   openImport({ imported: Set of full names, onImported(project | null) });
//
// Lists GET /api/github/repositories?page=&per_page=&q= in #import-list
// (rows carry data-full-name), with a debounced search (#import-search) and
// prev/next pages (#import-prev, #import-next; next follows has_next). Each
// row's Import button posts POST /api/projects/from-github {full_name}: a 409
// already_imported is said on that row, other failures in a toast. When
// A search the server stopped early (truncated: true) says so above the list
// (#import-truncated). When
// GitHub refuses the token (github_token_invalid) the list says so and the
// app opens the sign-in-again dialog (app.js, on the api-error event); the
// list loads again once the session changes.

import { api } from "./api.js";
import { modal } from "./dialog.js";
import { el, replaceChildren } from "./dom.js";
import { openDeviceFlow } from "./github.js";
import { toastError, toastSuccess } from "./toast.js";

const PER_PAGE = 8;
const DEBOUNCE_MS = 300;

function timeAgoIso(iso) {
	const t = Date.parse(iso);
	if (Number.isNaN(t))
		return "";
	const d = Math.max(0, (Date.now() - t) / 1000);
	if (d < 60)
		return "updated just now";
	if (d < 3600)
		return `updated ${Math.floor(d / 60)} min ago`;
	if (d < 86400)
		return `updated ${Math.floor(d / 3600)} h ago`;
	if (d < 86400 * 30)
		return `updated ${Math.floor(d / 86400)} d ago`;
	return "updated " + new Date(t).toLocaleDateString();
}

export function privateBadge() {
	return el("span", { class: "tag tag-private", title: "Private repository" },
		el("span", { class: "lock", "aria-hidden": "true" }), "private");
}

export function openImport({ imported = new Set(), onImported } = {}) {
	if (modal.isOpen("import-dialog"))
		return null;
	let page = 1;
	let q = "";
	let hasNext = false;
	let loading = null; // AbortController of the list request
	let debounce = 0;
	const known = new Set([...imported].map((n) => n.toLowerCase()));

	const d = modal({
		id: "import-dialog",
		title: "Import from GitHub",
		className: "import-dialog",
		wide: true,
		onClose: () => {
			loading?.abort();
			clearTimeout(debounce);
			window.removeEventListener("anyon:session", onSessionChange);
		},
	});

	const search = el("input", {
		id: "import-search", type: "search", placeholder: "Search by name or description",
		autocomplete: "off", spellcheck: "false", "aria-controls": "import-list", autofocus: true,
	});
	const list = el("ul", { id: "import-list", class: "repo-list", "aria-label": "Your GitHub repositories",
		"aria-busy": "true" });
	const status = el("div", { id: "import-status", class: "import-status", role: "status" });
	// A search covers the most recently updated repositories only (the
	// server walks a bounded number of GitHub's pages): say so when it stopped.
	const truncated = el("p", { id: "import-truncated", class: "callout callout-info import-truncated",
		role: "note", hidden: true });
	const prev = el("button", { id: "import-prev", class: "btn btn-sm", type: "button", disabled: true,
		"aria-label": "Previous page" }, "\u2190 Prev");
	const next = el("button", { id: "import-next", class: "btn btn-sm", type: "button", disabled: true,
		"aria-label": "Next page" }, "Next \u2192");
	const pageLabel = el("span", { id: "import-page", class: "muted small" });

	replaceChildren(d.body,
		el("p", { class: "muted small modal-lead" },
			"Pick a repository to add to your board. anyon clones it later, inside each task's container."),
		el("div", { class: "search-field" },
			el("label", { for: "import-search", class: "visually-hidden" }, "Search repositories"),
			el("span", { class: "search-icon", "aria-hidden": "true" }),
			search),
		status,
		truncated,
		list);
	d.foot.hidden = false;
	replaceChildren(d.foot, pageLabel, el("span", { class: "spacer" }), prev, next);

	search.addEventListener("input", () => {
		clearTimeout(debounce);
		debounce = setTimeout(() => {
			const v = search.value.trim();
			if (v === q)
				return;
			q = v;
			page = 1;
			load();
		}, DEBOUNCE_MS);
	});
	search.addEventListener("keydown", (ev) => {
		// A search field eats the first Escape (it clears itself); here
		// Escape closes the dialog, as everywhere else in it.
		if (ev.key === "Escape") {
			ev.preventDefault();
			d.close();
			return;
		}
		if (ev.key === "Enter") {
			ev.preventDefault();
			clearTimeout(debounce);
			q = search.value.trim();
			page = 1;
			load();
		}
	});
	prev.addEventListener("click", () => {
		if (page > 1) {
			page--;
			load();
		}
	});
	next.addEventListener("click", () => {
		if (hasNext) {
			page++;
			load();
		}
	});

	function onSessionChange(ev) {
		// Signed in to GitHub again: the list can load now.
		if (ev.detail && ev.detail.github && ev.detail.github.connected && !ev.detail.github.token_invalid
			&& d.dialog.dataset.state === "error")
			load();
	}
	window.addEventListener("anyon:session", onSessionChange);

	function showStatus(kind, ...content) {
		status.dataset.kind = kind;
		replaceChildren(status, ...content);
		status.hidden = content.length === 0;
	}

	function skeleton() {
		return Array.from({ length: 4 }, () =>
			el("li", { class: "repo-row skeleton", "aria-hidden": "true" },
				el("div", { class: "repo-main" }, el("span", { class: "sk sk-title" }), el("span", { class: "sk sk-line" })),
				el("span", { class: "sk sk-btn" })));
	}

	function row(repo) {
		const full = repo.full_name || "";
		const already = known.has(full.toLowerCase());
		const note = el("span", { class: "row-note", role: "status" });
		const button = el("button", {
			class: "btn btn-sm btn-import", type: "button",
			"aria-label": "Import " + full,
		}, "Import");
		const li = el("li", { class: "repo-row", dataset: { fullName: full } },
			el("div", { class: "repo-main" },
				el("div", { class: "repo-title" },
					el("span", { class: "repo-name" }, repo.name || full),
					repo.private ? privateBadge() : null,
					el("span", { class: "repo-full mono" }, full)),
				repo.description ? el("p", { class: "repo-desc" }, repo.description) : null,
				el("p", { class: "repo-meta" },
					repo.default_branch ? el("span", { class: "branch mono" }, repo.default_branch) : null,
					repo.updated_at ? el("span", {}, timeAgoIso(repo.updated_at)) : null)),
			el("div", { class: "repo-side" }, note, button));

		function mark(state, text) {
			li.dataset.state = state;
			note.dataset.state = state;
			note.textContent = text;
			button.disabled = true;
			button.textContent = "Imported";
		}
		if (already)
			mark("already", "already imported");

		button.addEventListener("click", async () => {
			button.disabled = true;
			button.textContent = "Importing\u2026";
			note.textContent = "";
			try {
				const { project } = await api.post("/api/projects/from-github", { full_name: full }, { toast: false });
				known.add(full.toLowerCase());
				mark("imported", "added to your board");
				toastSuccess(`Imported ${project.github_full_name || full}`);
				onImported?.(project);
			} catch (err) {
				if (err.code === "already_imported") {
					known.add(full.toLowerCase());
					mark("already", "already imported");
					onImported?.(null); // the board did not know: show it again
					return;
				}
				button.disabled = false;
				button.textContent = "Import";
				if (err.code !== "github_token_invalid")
					toastError(err.message, { code: err.code });
			}
		});
		return li;
	}

	async function load() {
		loading?.abort();
		loading = new AbortController();
		const signal = loading.signal;
		d.dialog.dataset.state = "loading";
		list.setAttribute("aria-busy", "true");
		prev.disabled = true;
		next.disabled = true;
		showStatus("loading");
		if (!list.querySelector(".repo-row:not(.skeleton)"))
			replaceChildren(list, skeleton());
		else
			list.classList.add("stale");
		const qs = new URLSearchParams({ page: String(page), per_page: String(PER_PAGE) });
		if (q)
			qs.set("q", q);
		let r;
		try {
			r = await api.get("/api/github/repositories?" + qs, { toast: false, signal });
		} catch (err) {
			if (err.name === "AbortError")
				return;
			list.classList.remove("stale");
			list.setAttribute("aria-busy", "false");
			truncated.hidden = true;
			d.dialog.dataset.state = "error";
			replaceChildren(list);
			pageLabel.textContent = "";
			prev.disabled = page <= 1;
			showStatus("error", ...failure(err));
			if (err.code !== "github_token_invalid" && err.code !== "github_not_connected")
				toastError(err.message, { code: err.code });
			return;
		}
		list.classList.remove("stale");
		list.setAttribute("aria-busy", "false");
		d.dialog.dataset.state = "ready";
		hasNext = !!r.has_next;
		const repos = r.repositories || [];
		truncated.hidden = !(q && r.truncated === true);
		truncated.textContent = truncated.hidden ? ""
			: "Not every repository was searched: you have more than a search covers, so it looked through "
			+ "your 1000 most recently updated ones only. An older one shows up here once it is updated "
			+ "(pushed to) on GitHub.";
		replaceChildren(list, repos.map(row));
		prev.disabled = page <= 1;
		next.disabled = !hasNext;
		pageLabel.textContent = repos.length || page > 1 ? `Page ${page}` : "";
		if (repos.length === 0)
			showStatus("empty", q ? `No repository matches \u201c${q}\u201d.` : "No repositories on this GitHub account.");
		else
			showStatus("ok");
	}

	function failure(err) {
		if (err.code === "github_token_invalid") {
			const again = el("button", { class: "btn btn-sm btn-primary", type: "button" }, "Sign in again");
			again.addEventListener("click", () => openDeviceFlow({ purpose: "relogin" }));
			return [el("strong", {}, "GitHub no longer accepts your token."), " ", again];
		}
		if (err.code === "github_not_connected") {
			const connect = el("button", { class: "btn btn-sm btn-primary", type: "button" }, "Connect GitHub");
			connect.addEventListener("click", () => openDeviceFlow({ purpose: "connect", onComplete: () => load() }));
			return [el("strong", {}, "GitHub is not connected."), " ", connect];
		}
		const retry = el("button", { class: "btn btn-sm", type: "button" }, "Try again");
		retry.addEventListener("click", () => load());
		return [el("span", {}, err.message), " ", retry];
	}

	d.open();
	load();
	return d;
}
