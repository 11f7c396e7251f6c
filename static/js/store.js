// store.js - the server's vocabularies, the change feed, and the tasks of
// the open project, shared by the screens of one tab.
//
//   const meta = await getMeta();          // GET /api/meta, loaded once
//   executorChoices(meta)                  // [{name, label}] of meta.executors
//   await onEvents((events) => ..., signal); // resolves once the feed is primed
//   watchTasks(projectId, ({tasks, error}) => draw(tasks), signal);
//   const stop = watchFeed((events) => ...); // passive: never starts the feed
//
// The feed: ONE poller per tab on GET /api/events?after=N (poll.js: about
// once a second while the tab is visible, at once again while `more`). It
// runs while at least one subscriber's signal is live and stops when the
// last one aborts (the screens pass their ctx.signal, so leaving a screen
// stops it); the cursor is kept, so the next screen resumes where it was.
// The first subscription of a tab primes the cursor: it walks the feed to
// its end without delivering anything (those changes are already in what
// the screen is about to load), and only then does onEvents() resolve.
// A screen therefore awaits onEvents() before it loads, and reloads on the
// events it is given afterwards: nothing is missed, at worst loaded twice.
//
// watchFeed(fn) listens for the whole life of the tab without keeping the
// poller running: fn sees every page of events while some screen runs the
// feed (app.js: the Claude re-login banner). It returns a function that
// stops it.
//
// watchTasks() keeps one project's task list (GET /api/projects/{id}/tasks,
// which has no descriptions) and reloads it on task.* events of that
// project; loads are coalesced (one at a time, one more if something
// changed meanwhile). refreshTasks(projectId) asks for a reload after the
// page changed something itself. taskDetail(task) fetches one task with its
// description (for the card's excerpt), cached by id and version, at
// most a few at a time.

import { api } from "./api.js";
import { poll } from "./poll.js";

// ---- meta ----

let metaPromise = null;

export function getMeta() {
	if (!metaPromise) {
		const p = api.get("/api/meta", { toast: false });
		metaPromise = p;
		p.catch(() => { if (metaPromise === p) metaPromise = null; });
	}
	return metaPromise;
}

// Words for the task statuses we know (meta.task_statuses is the list);
// any other the server adds shows as is.
const STATUS_WORDS = {
	todo: "To do", inprogress: "In progress", inreview: "In review", done: "Done", cancelled: "Cancelled",
};
export const statusWord = (s) => STATUS_WORDS[s] || s;

// The executors meta names, as [{name, label}] in its order: an entry is
// an object {name, label} (the executors table), or a bare name.
export function executorChoices(meta) {
	const list = Array.isArray(meta?.executors) ? meta.executors : [];
	return list.map((x) => (typeof x === "string"
		? { name: x, label: x }
		: { name: String(x.name), label: String(x.label || x.name) }));
}

// ---- the change feed ----

const FEED_INTERVAL_MS = 1000;
const PRIME_PAGES = 200; // 200 pages of 500: far beyond 7 days of one user

let cursor = null;       // the last event id seen; null until primed
let priming = null;      // the promise of the priming walk
const listeners = new Set();
const passive = new Set(); // watchFeed()'s
let feed = null;         // AbortController of the running poller

async function prime() {
	let after = 0;
	for (let page = 0; page < PRIME_PAGES; page++) {
		const r = await api.get(`/api/events?after=${after}&limit=500`, { toast: false });
		after = r.next_after;
		if (!r.more)
			break;
	}
	cursor = after;
}

function startFeed() {
	if (feed)
		return;
	const controller = new AbortController();
	feed = controller;
	poll({
		fn: (sig) => api.get(`/api/events?after=${cursor}&limit=100`, { toast: false, signal: sig }),
		interval: (r) => (r && r.more ? 0 : FEED_INTERVAL_MS),
		onResult: (r) => {
			if (typeof r.next_after === "number")
				cursor = r.next_after;
			if (!r.events.length)
				return;
			for (const fn of [...listeners, ...passive]) {
				try {
					fn(r.events);
				} catch (err) {
					console.error("event listener:", err);
				}
			}
		},
		// The feed never gives up: a failure backs off and tries again.
		onError: () => true,
		signal: controller.signal,
	}).catch(() => {}).finally(() => {
		if (feed === controller)
			feed = null;
	});
}

// Stops the feed's poll now (the page is signing out: a poll then would
// only meet a 401). The next onEvents() starts it again.
export function pauseFeed() {
	if (feed) {
		feed.abort();
		feed = null;
	}
}

function stopFeedIfIdle() {
	if (listeners.size === 0 && feed) {
		feed.abort();
		feed = null;
	}
}

// onEvents(fn, signal): fn(events) for every page of new events until
// signal aborts. Resolves once the feed is primed (see above).
export async function onEvents(fn, signal) {
	if (signal?.aborted)
		return;
	listeners.add(fn);
	signal?.addEventListener("abort", () => {
		listeners.delete(fn);
		stopFeedIfIdle();
	}, { once: true });
	if (cursor === null) {
		if (!priming) {
			priming = prime();
			priming.catch(() => { priming = null; });
		}
		try {
			await priming;
		} catch {
			// Without a cursor start from the beginning: more reloads, no loss.
			if (cursor === null)
				cursor = 0;
		}
	}
	if (!signal?.aborted && listeners.has(fn))
		startFeed();
}

export function watchFeed(fn) {
	passive.add(fn);
	return () => passive.delete(fn);
}

// ---- one project's tasks ----

// watchTasks(projectId, fn, signal): fn({tasks}) after every load, or
// fn({error}) when one fails (404: the project is gone). Returns
// {refresh()}.
export function watchTasks(projectId, fn, signal) {
	const id = String(projectId);
	let loading = false;
	let again = false;

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
					// The board carries an ETag: an unchanged one is a 304
					// and the body the browser kept.
					const r = await api.get(`/api/projects/${encodeURIComponent(id)}/tasks`,
						{ toast: false, signal, cache: "no-cache" });
					if (!signal?.aborted)
						fn({ tasks: r.tasks || [] });
				} catch (err) {
					if (err.name === "AbortError" || signal?.aborted)
						return;
					fn({ error: err });
				}
			} while (again && !signal?.aborted);
		} finally {
			loading = false;
		}
	}

	const handle = { refresh: load };
	watchers.set(handle, id);
	signal?.addEventListener("abort", () => watchers.delete(handle), { once: true });

	onEvents((events) => {
		for (const e of events) {
			if (e.kind.startsWith("task.") && String(e.project_id) === id) {
				load();
				return;
			}
		}
	}, signal).then(() => {
		if (!signal?.aborted)
			load();
	});
	return handle;
}

const watchers = new Map(); // handle -> project id

export function refreshTasks(projectId) {
	for (const [handle, id] of watchers)
		if (id === String(projectId))
			handle.refresh();
}

// ---- task details (descriptions) ----

const DETAIL_CACHE_MAX = 2000;
const DETAIL_CONCURRENCY = 4;
const details = new Map(); // id -> {version, promise}
// updated_at is in seconds: two edits in one second differ in size or title.
const version = (t) => `${t.updated_at}:${t.description_bytes}:${t.title}`;
const queue = [];
let running = 0;

function pump() {
	while (running < DETAIL_CONCURRENCY && queue.length) {
		const job = queue.shift();
		running++;
		api.get(`/api/tasks/${encodeURIComponent(job.id)}`, { toast: false })
			.then((r) => job.resolve(r.task), job.reject)
			.finally(() => {
				running--;
				pump();
			});
	}
}

// taskDetail(task) -> Promise of the full task (with description), fetched
// once per version of the task.
export function taskDetail(task) {
	const hit = details.get(task.id);
	if (hit && hit.version === version(task))
		return hit.promise;
	const promise = new Promise((resolve, reject) => {
		queue.push({ id: task.id, resolve, reject });
		pump();
	});
	details.delete(task.id);
	details.set(task.id, { version: version(task), promise });
	promise.catch(() => {
		if (details.get(task.id)?.promise === promise)
			details.delete(task.id);
	});
	if (details.size > DETAIL_CACHE_MAX)
		details.delete(details.keys().next().value);
	return promise;
}

// Remember a task the page just got in full (after an edit).
export function rememberTask(task) {
	details.delete(task.id);
	details.set(task.id, { version: version(task), promise: Promise.resolve(task) });
}
