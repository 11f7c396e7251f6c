// screens/project.js - one project (#/project/<id>): its board and settings.
//
// The board (#kanban) has one column per task status, in the order of
// GET /api/meta's task_statuses (never a list of our own). A column
// (.column[data-status]) holds task cards (.task-card[data-task-id]): the
// title and an excerpt of the description (the list has no descriptions:
// store.js fetches them, cached per version of the task); the title is a
// link to the task's screen (#/task/<id>: its attempts). A card's buttons
// (data-move="left|up|down|right", data-action="edit|delete") move it with
// the keyboard; cards are also dragged and dropped between and within
// columns. Every move is POST /api/tasks/{id}/move with the anchor that
// puts it where it was dropped: {before: the card it now precedes}, or
// {after: the last card} at the end of a non-empty column, or no anchor
// in an empty one. Up and down swap with the neighbour; left and right go
// to the end of the next column.
//
// "New task" (#task-new) and a card's Edit open the task dialog (title,
// description); Delete asks first. The settings card (#project-settings-form:
// name, base branch, setup script, default executor from meta's executors)
// saves with PATCH /api/projects/{id}; "Remove project" (#project-remove)
// asks first, then DELETE and back to the board.
//
// The tasks come from store.js's watchTasks(), which reloads them on the
// change feed's task.* events of this project: a change made in another
// tab shows here within about a second. A project.deleted event of this
// project (removed elsewhere) goes back to the board.

import { api } from "../api.js";
import { confirmDialog, modal } from "../dialog.js";
import { el, replaceChildren } from "../dom.js";
import { clearErrors, field, fieldError } from "../form.js";
import { executorChoices, getMeta, onEvents, refreshTasks, rememberTask, statusWord, taskDetail, watchTasks }
	from "../store.js";
import { toastError, toastInfo, toastSuccess } from "../toast.js";

const EXCERPT_CHARS = 140;

function excerpt(text) {
	const flat = String(text || "").replace(/\s+/g, " ").trim();
	if (flat.length <= EXCERPT_CHARS)
		return flat;
	return flat.slice(0, EXCERPT_CHARS).replace(/\s+\S*$/, "") + "\u2026";
}

function notFound(main, message) {
	replaceChildren(main,
		el("section", { class: "screen" },
			el("div", { class: "card empty", id: "project-missing" },
				el("h1", { text: "No such project" }),
				el("p", { class: "muted" }, message),
				el("p", {}, el("a", { href: "#/board" }, "Back to the board")))));
}

// The task dialog: new (no task) or edit. onSaved(task) after the write.
function openTaskDialog({ projectId, task, statuses, onSaved }) {
	if (modal.isOpen("task-dialog"))
		return;
	const editing = !!task;
	const d = modal({ id: "task-dialog", title: editing ? "Edit task" : "New task", wide: true });
	const title = field({ id: "task-title", label: "Title",
		control: el("input", { type: "text", autocomplete: "off", autofocus: true, required: true }) });
	const description = field({ id: "task-description", label: "Description",
		control: el("textarea", { rows: 8, spellcheck: "true" }),
		hint: "What the agent should do. Plain text; kept as written." });
	const general = el("p", { id: "task-error", class: "callout callout-warn", role: "alert", hidden: true });
	const submit = el("button", { class: "btn btn-primary", type: "submit", id: "task-submit" },
		editing ? "Save" : "Create task");
	const fields = { title, description };
	let status = null;
	if (!editing && statuses.length > 1) {
		status = field({ id: "task-status", label: "Column",
			control: el("select", {}, statuses.map((s) => el("option", { value: s }, statusWord(s)))) });
		fields.status = status;
	}
	const form = el("form", { class: "form", id: "task-form", novalidate: true },
		title.node, description.node, status ? status.node : null, general,
		el("div", { class: "form-actions" }, submit));

	if (editing) {
		title.control.value = task.title;
		description.control.disabled = true;
		description.control.placeholder = "Loading\u2026";
		submit.disabled = true;
		api.get(`/api/tasks/${encodeURIComponent(task.id)}`, { toast: false }).then((r) => {
			description.control.value = r.task.description;
			description.control.placeholder = "";
			description.control.disabled = false;
			submit.disabled = false;
		}, (err) => {
			general.textContent = "Could not load the task: " + err.message;
			general.hidden = false;
		});
	}

	form.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		clearErrors(fields, general);
		if (!title.control.value.trim()) {
			title.setError("Give the task a title.");
			title.control.focus();
			return;
		}
		const body = { title: title.control.value, description: description.control.value };
		if (status)
			body.status = status.control.value;
		submit.disabled = true;
		try {
			const r = editing
				? await api.patch(`/api/tasks/${encodeURIComponent(task.id)}`, body, { toast: false })
				: await api.post(`/api/projects/${encodeURIComponent(projectId)}/tasks`, body, { toast: false });
			rememberTask(r.task);
			d.close();
			onSaved?.(r.task);
		} catch (err) {
			fieldError(fields, err, general);
		} finally {
			submit.disabled = false;
		}
	});
	d.body.append(form);
	d.open();
}

export function render(main, { params, signal }) {
	const projectId = params[0] || "";
	if (!/^[1-9][0-9]{0,18}$/.test(projectId)) {
		notFound(main, "That is not a project's address.");
		return null;
	}
	const pid = encodeURIComponent(projectId);
	let project = null;
	let statuses = [];
	let tasks = [];
	let removing = false;

	// ---- drag and drop state ----
	let dragId = null;        // the task being dragged
	let renderLater = false;  // a load arrived mid-drag: draw it at dragend

	const title = el("h1", { id: "project-title" }, "Project");
	const where = el("p", { class: "muted project-where mono", id: "project-location" });
	const newTask = el("button", { id: "task-new", class: "btn btn-primary", type: "button", disabled: true,
		on: { click: () => openTaskDialog({ projectId, statuses, onSaved: afterChange }) } }, "New task");
	const kanban = el("div", { id: "kanban", class: "kanban", "aria-busy": "true" });
	const live = el("p", { class: "visually-hidden", id: "board-live", role: "status", "aria-live": "polite" });
	const settingsSlot = el("div", { class: "settings-grid project-settings" });

	replaceChildren(main,
		el("section", { class: "screen", "aria-labelledby": "project-title" },
			el("p", { class: "crumbs" }, el("a", { href: "#/board", id: "back-to-board" }, "\u2190 Board")),
			el("header", { class: "screen-head screen-head-row" },
				el("div", {}, title, where),
				el("div", { class: "screen-actions" }, newTask)),
			el("p", { class: "hint kanban-help", id: "kanban-help" },
				"Drag a card to another place, or use its arrow buttons."),
			kanban,
			live,
			settingsSlot));

	function afterChange() {
		refreshTasks(projectId);
	}

	// ---- the board ----

	const column = (status) => tasks.filter((t) => t.status === status);

	function sortTasks() {
		const rank = new Map(statuses.map((s, i) => [s, i]));
		tasks.sort((a, b) => (rank.get(a.status) ?? 1e9) - (rank.get(b.status) ?? 1e9) || a.position - b.position);
	}

	const excerpts = new Map(); // task id -> text last shown

	function card(t, index, count, si) {
		const desc = el("p", { class: "task-desc muted" }, excerpts.get(t.id) || "");
		desc.hidden = !t.description_bytes || !excerpts.get(t.id);
		if (t.description_bytes) {
			taskDetail(t).then((full) => {
				const text = excerpt(full.description);
				excerpts.set(t.id, text);
				desc.textContent = text;
				desc.hidden = !text;
			}, () => {});
		} else {
			excerpts.delete(t.id);
		}
		const name = `\u201c${t.title}\u201d`;
		const btn = (move, label, glyph, disabled) => el("button", {
			class: "btn btn-ghost btn-icon", type: "button", dataset: { move }, disabled,
			"aria-label": label, title: label }, glyph);
		const left = si > 0 ? statuses[si - 1] : null;
		const right = si < statuses.length - 1 ? statuses[si + 1] : null;
		return el("li", { class: "task-card", draggable: "true", dataset: { taskId: String(t.id), status: t.status },
			"aria-labelledby": "task-" + t.id + "-title" },
			el("h3", { class: "task-title", id: "task-" + t.id + "-title" },
				el("a", { class: "task-open", href: "#/task/" + t.id, draggable: "false" }, t.title)),
			desc,
			el("div", { class: "task-actions" },
				el("span", { class: "task-moves", role: "group", "aria-label": "Move " + name },
					btn("left", left ? `Move ${name} to ${statusWord(left)}` : "Move left", "\u2190", !left),
					btn("up", `Move ${name} up`, "\u2191", index === 0),
					btn("down", `Move ${name} down`, "\u2193", index === count - 1),
					btn("right", right ? `Move ${name} to ${statusWord(right)}` : "Move right", "\u2192", !right)),
				el("span", { class: "task-edit" },
					el("button", { class: "btn btn-ghost btn-sm", type: "button", dataset: { action: "edit" },
						"aria-label": "Edit " + name }, "Edit"),
					el("button", { class: "btn btn-ghost btn-sm btn-danger-ghost", type: "button",
						dataset: { action: "delete" }, "aria-label": "Delete " + name }, "Delete"))));
	}

	function draw() {
		if (dragId !== null) {
			renderLater = true;
			return;
		}
		// Keep the keyboard where it was: the same button of the same task.
		const a = document.activeElement;
		const focusCard = a && kanban.contains(a) ? a.closest(".task-card") : null;
		const focusKey = focusCard ? {
			id: focusCard.dataset.taskId, move: a.dataset.move, action: a.dataset.action,
		} : null;

		const cols = statuses.map((s, si) => {
			const mine = column(s);
			const headId = "col-" + s + "-title";
			return el("section", { class: "column", dataset: { status: s }, "aria-labelledby": headId },
				el("header", { class: "column-head" },
					el("h2", { id: headId }, statusWord(s)),
					el("span", { class: "count muted", "aria-label": mine.length + " tasks" }, String(mine.length))),
				el("ol", { class: "task-list", dataset: { status: s }, "aria-labelledby": headId },
					mine.map((t, i) => card(t, i, mine.length, si))),
				mine.length ? null : el("p", { class: "column-empty muted" }, "No tasks"));
		});
		replaceChildren(kanban, cols);
		kanban.setAttribute("aria-busy", "false");

		if (focusKey) {
			const c = kanban.querySelector(`.task-card[data-task-id="${CSS.escape(focusKey.id)}"]`);
			let target = null;
			if (c) {
				if (focusKey.move)
					target = c.querySelector(`[data-move="${focusKey.move}"]`);
				else if (focusKey.action)
					target = c.querySelector(`[data-action="${focusKey.action}"]`);
				if (!target || target.disabled)
					target = c.querySelector("[data-move]:not([disabled])") || c.querySelector("[data-action]");
			}
			target?.focus({ preventScroll: false });
		}
	}

	// Moves task id; anchor is {} or {before} or {after}.
	async function move(id, status, anchor) {
		const t = tasks.find((x) => x.id === id);
		try {
			const r = await api.post(`/api/tasks/${encodeURIComponent(id)}/move`, { status, ...anchor },
				{ toast: false });
			if (t) {
				t.status = r.task.status;
				t.position = r.task.position;
				t.updated_at = r.task.updated_at;
				sortTasks();
				draw();
			}
			const col = column(r.task.status);
			live.textContent = `Moved \u201c${r.task.title}\u201d to ${statusWord(r.task.status)}, ` +
				`position ${col.findIndex((x) => x.id === id) + 1} of ${col.length}.`;
		} catch (err) {
			if (err.code === "invalid_field" && err.body?.error?.field !== "status")
				toastInfo("The board changed meanwhile: it is up to date now, try again.");
			else if (err.status !== 404)
				toastError("Could not move the task: " + err.message, { code: err.code });
		}
		afterChange();
	}

	function moveBy(t, dir) {
		const mine = column(t.status);
		const i = mine.findIndex((x) => x.id === t.id);
		const si = statuses.indexOf(t.status);
		if (dir === "up" && i > 0)
			return move(t.id, t.status, { before: mine[i - 1].id });
		if (dir === "down" && i >= 0 && i < mine.length - 1)
			return move(t.id, t.status, { after: mine[i + 1].id });
		if (dir === "left" && si > 0)
			return move(t.id, statuses[si - 1], {});
		if (dir === "right" && si >= 0 && si < statuses.length - 1)
			return move(t.id, statuses[si + 1], {});
		return null;
	}

	async function removeTask(t) {
		const ok = await confirmDialog({ id: "delete-task-dialog", title: "Delete task?",
			message: ["Delete \u201c", t.title, "\u201d? This cannot be undone."], confirm: "Delete", danger: true });
		if (!ok)
			return;
		try {
			await api.delete(`/api/tasks/${encodeURIComponent(t.id)}`, { toast: false });
			toastSuccess("Deleted \u201c" + t.title + "\u201d");
		} catch (err) {
			if (err.status !== 404)
				toastError("Could not delete the task: " + err.message, { code: err.code });
		}
		afterChange();
	}

	kanban.addEventListener("click", (ev) => {
		const b = ev.target.closest("button");
		const c = b && b.closest(".task-card");
		if (!c)
			return;
		const t = tasks.find((x) => String(x.id) === c.dataset.taskId);
		if (!t)
			return;
		if (b.dataset.move)
			moveBy(t, b.dataset.move);
		else if (b.dataset.action === "edit")
			openTaskDialog({ projectId, task: t, statuses, onSaved: afterChange });
		else if (b.dataset.action === "delete")
			removeTask(t);
	});

	// ---- drag and drop ----

	function clearDrop() {
		for (const n of kanban.querySelectorAll(".drop-before"))
			n.classList.remove("drop-before");
		for (const n of kanban.querySelectorAll(".drop-end"))
			n.classList.remove("drop-end");
	}

	// Where a drop at clientY in col lands: {cards (without the dragged
	// one), before (the card it would precede, or null: at the end)}.
	function dropPoint(col, y) {
		const cards = [...col.querySelectorAll(".task-card")].filter((c) => c.dataset.taskId !== String(dragId));
		for (const c of cards) {
			const r = c.getBoundingClientRect();
			if (y < r.top + r.height / 2)
				return { cards, before: c };
		}
		return { cards, before: null };
	}

	kanban.addEventListener("dragstart", (ev) => {
		const c = ev.target.closest?.(".task-card");
		if (!c)
			return;
		dragId = Number(c.dataset.taskId);
		c.classList.add("dragging");
		if (ev.dataTransfer) {
			ev.dataTransfer.effectAllowed = "move";
			ev.dataTransfer.setData("text/plain", c.querySelector(".task-title").textContent);
		}
	});
	kanban.addEventListener("dragend", () => {
		dragId = null;
		clearDrop();
		for (const n of kanban.querySelectorAll(".dragging"))
			n.classList.remove("dragging");
		if (renderLater) {
			renderLater = false;
			draw();
		}
	});
	kanban.addEventListener("dragover", (ev) => {
		const col = ev.target.closest?.(".column");
		if (dragId === null || !col)
			return;
		ev.preventDefault();
		if (ev.dataTransfer)
			ev.dataTransfer.dropEffect = "move";
		clearDrop();
		const { before } = dropPoint(col, ev.clientY);
		if (before)
			before.classList.add("drop-before");
		else
			col.querySelector(".task-list").classList.add("drop-end");
	});
	kanban.addEventListener("dragleave", (ev) => {
		if (!ev.relatedTarget || !kanban.contains(ev.relatedTarget))
			clearDrop();
	});
	kanban.addEventListener("drop", (ev) => {
		const col = ev.target.closest?.(".column");
		if (dragId === null || !col)
			return;
		ev.preventDefault();
		const id = dragId;
		const t = tasks.find((x) => x.id === id);
		const status = col.dataset.status;
		const { cards, before } = dropPoint(col, ev.clientY);
		clearDrop();
		if (!t)
			return;
		// Dropped where it already is: nothing to do.
		if (t.status === status) {
			const mine = column(status);
			const was = mine.findIndex((x) => x.id === id);
			const now = before ? cards.indexOf(before) : cards.length;
			if (was === now)
				return;
		}
		let anchor = {};
		if (before)
			anchor = { before: Number(before.dataset.taskId) };
		else if (cards.length)
			anchor = { after: Number(cards[cards.length - 1].dataset.taskId) };
		move(id, status, anchor);
	});

	// ---- settings ----

	function drawSettings() {
		const name = field({ id: "settings-name", label: "Name",
			control: el("input", { type: "text", autocomplete: "off", value: project.name }) });
		const base = field({ id: "settings-base-branch", label: "Base branch",
			control: el("input", { type: "text", autocomplete: "off", spellcheck: "false", class: "mono",
				value: project.base_branch }),
			hint: "Where a task's work starts from." });
		const setup = field({ id: "settings-setup-script", label: "Setup script",
			control: el("textarea", { rows: 5, spellcheck: "false", placeholder: "e.g. npm ci" }),
			hint: "Runs in the workspace before the agent." });
		setup.control.value = project.setup_script;
		const choices = executorChoices(meta);
		const execs = field({ id: "settings-default-executor", label: "Default executor",
			control: el("select", {}, choices.map((x) =>
				el("option", { value: x.name, selected: x.name === project.default_executor }, x.label))) });
		if (!choices.some((x) => x.name === project.default_executor))
			execs.control.append(el("option", { value: project.default_executor, selected: true },
				project.default_executor));
		const general = el("p", { id: "settings-error", class: "callout callout-warn", role: "alert", hidden: true });
		const save = el("button", { class: "btn btn-primary", type: "submit", id: "settings-save" }, "Save settings");
		const fields = { name, base_branch: base, setup_script: setup, default_executor: execs };
		const form = el("form", { class: "form", id: "project-settings-form", novalidate: true },
			name.node, base.node, setup.node, execs.node, general,
			el("div", { class: "form-actions" }, save));
		form.addEventListener("submit", async (ev) => {
			ev.preventDefault();
			clearErrors(fields, general);
			const body = {
				name: name.control.value.trim(), base_branch: base.control.value.trim(),
				setup_script: setup.control.value, default_executor: execs.control.value,
			};
			save.disabled = true;
			try {
				const r = await api.patch(`/api/projects/${pid}`, body, { toast: false });
				project = r.project;
				showProject();
				toastSuccess("Settings saved");
			} catch (err) {
				fieldError(fields, err, general);
			} finally {
				save.disabled = false;
			}
		});

		const remove = el("button", { class: "btn btn-danger", type: "button", id: "project-remove",
			on: { click: removeProject } }, "Remove project");
		replaceChildren(settingsSlot,
			el("section", { class: "card", "aria-labelledby": "settings-title", id: "project-settings" },
				el("h2", { id: "settings-title" }, "Settings"), form),
			el("section", { class: "card", "aria-labelledby": "remove-title" },
				el("h2", { id: "remove-title" }, "Remove project"),
				el("p", { class: "muted" }, project.source === "path"
					? "Its tasks go with it. The repository on disk is not touched."
					: "Its tasks go with it. The repository itself is not touched."),
				el("p", {}, remove)));
	}

	async function removeProject() {
		const ok = await confirmDialog({ id: "remove-project-dialog", title: "Remove project?",
			message: ["Remove \u201c", project.name, "\u201d and its ", String(tasks.length),
				tasks.length === 1 ? " task?" : " tasks?", " This cannot be undone."],
			confirm: "Remove project", danger: true });
		if (!ok)
			return;
		removing = true;
		try {
			await api.delete(`/api/projects/${pid}`, { toast: false });
			toastSuccess("Removed " + project.name);
			location.hash = "#/board";
		} catch (err) {
			removing = false;
			if (err.status === 404) {
				location.hash = "#/board";
				return;
			}
			toastError("Could not remove the project: " + err.message, { code: err.code });
		}
	}

	function showProject() {
		title.textContent = project.name;
		document.title = project.name + " \u00b7 anyon";
		where.textContent = project.github_full_name || project.location || "";
		where.hidden = !where.textContent;
	}

	// ---- loading ----

	let meta = null;
	(async () => {
		try {
			const [m, r] = await Promise.all([
				getMeta(),
				api.get(`/api/projects/${pid}`, { toast: false, signal }),
			]);
			meta = m;
			project = r.project;
		} catch (err) {
			if (err.name === "AbortError" || signal.aborted)
				return;
			if (err.status === 404)
				notFound(main, "It was removed, or it is not yours.");
			else
				toastError("Could not load the project: " + err.message, { code: err.code });
			return;
		}
		if (signal.aborted)
			return;
		statuses = meta.task_statuses.slice();
		showProject();
		drawSettings();
		newTask.disabled = false;
		onEvents((events) => {
			if (removing)
				return;
			if (events.some((e) => e.kind === "project.deleted" && String(e.subject) === projectId)) {
				toastInfo("\u201c" + project.name + "\u201d was removed.");
				location.hash = "#/board";
			}
		}, signal);
		watchTasks(projectId, ({ tasks: list, error }) => {
			if (error) {
				if (error.status === 404 && !removing)
					notFound(main, "It was removed, or it is not yours.");
				else if (error.status !== 404)
					toastError("Could not load the tasks: " + error.message, { code: error.code });
				return;
			}
			// Unchanged (our own move, already drawn): leave the page be.
			if (JSON.stringify(list) === JSON.stringify(tasks) && kanban.getAttribute("aria-busy") === "false")
				return;
			tasks = list;
			sortTasks();
			draw();
		}, signal);
	})();
	return null;
}
