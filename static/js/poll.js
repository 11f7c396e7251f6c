// poll.js - call something again and again, politely.
//
//   const job = await poll({
//       fn: (signal) => api.get("/api/jobs/4", { toast: false, signal }),
//       interval: 1000,
//       until: (r) => r.job.state !== "running",
//       signal: controller.signal,
//   });
//
// poll() calls fn, hands each result to onResult, and stops when until(result)
// is true (resolving with that result) or when signal aborts (resolving with
// undefined). Between calls it waits `interval` ms (a number, or a function of
// the last result); while the tab is hidden it waits for it to show again.
// A failing call backs off (interval doubled per failure, up to maxInterval)
// and is retried; onError(err, failures) sees each failure and may return
// false to stop: poll() then rejects with that error. Without onError,
// client errors (4xx other than 408/429) stop and anything else is retried.
// wake(fn), if given, receives a function that cuts the current wait short
// (to poll again at once after the user changed something).
//
// followJobOutput(jobId, {onChunk, onDone, signal}) streams a job's output
// by polling GET /api/jobs/{id}/output?after=SEQ until it reports done.

import { api } from "./api.js";

// Waits ms, or less if signal aborts or waker() is called meanwhile.
function sleep(ms, signal, setWaker) {
	return new Promise((resolve) => {
		if (signal?.aborted)
			return resolve();
		const done = () => {
			clearTimeout(t);
			signal?.removeEventListener("abort", done);
			setWaker?.(null);
			resolve();
		};
		const t = setTimeout(done, ms);
		signal?.addEventListener("abort", done, { once: true });
		setWaker?.(done);
	});
}

function whileHidden(signal) {
	return new Promise((resolve) => {
		if (!document.hidden || signal?.aborted)
			return resolve();
		const done = () => {
			if (document.hidden && !signal?.aborted)
				return;
			document.removeEventListener("visibilitychange", done);
			signal?.removeEventListener("abort", done);
			resolve();
		};
		document.addEventListener("visibilitychange", done);
		signal?.addEventListener("abort", done, { once: true });
	});
}

// Stop on a client error: asking again will not change the answer.
export function retryable(err) {
	const s = err && err.status;
	return !(s >= 400 && s < 500 && s !== 408 && s !== 429);
}

export async function poll({
	fn,
	interval = 1000,
	maxInterval = 30000,
	until = () => false,
	onResult,
	onError,
	signal,
	wake,
}) {
	let failures = 0;
	let waker = null;
	const setWaker = (fn) => { waker = fn; };
	wake?.(() => waker?.());

	for (;;) {
		await whileHidden(signal);
		if (signal?.aborted)
			return undefined;
		let result;
		try {
			result = await fn(signal);
		} catch (err) {
			if (signal?.aborted)
				return undefined;
			failures++;
			const go = onError ? onError(err, failures) !== false : retryable(err);
			if (!go)
				throw err;
			const base = typeof interval === "function" ? interval(undefined) : interval;
			await sleep(Math.min(Math.max(base, 250) * 2 ** failures, maxInterval), signal, setWaker);
			continue;
		}
		if (signal?.aborted)
			return undefined;
		failures = 0;
		onResult?.(result);
		if (until(result))
			return result;
		await sleep(typeof interval === "function" ? interval(result) : interval, signal, setWaker);
	}
}

// Whether more output is waiting beyond this page: the API says so
// (`more`); an older answer without it, a page near either limit (500
// chunks or 256 KiB).
export function fullPage(r) {
	if (typeof r.more === "boolean")
		return r.more;
	let bytes = 0;
	for (const c of r.chunks)
		bytes += c.data.length;
	return r.chunks.length >= 500 || bytes >= 200 * 1024;
}

// followJobOutput(jobId, {onChunk, onChunks, onDone, onState, onError, signal, interval})
// calls onChunk(chunk) for every chunk in order ({seq, stream, data, at}),
// and onChunks(chunks) once per answer with all of them (to draw a page at once),
// onState(state) whenever the job's state changes, and at the end
// onDone({state, exit_code}). Resolves with that final answer, or undefined
// when aborted. A full page of output is followed at once, not after the
// interval. `after` starts past chunks the caller already has.
export async function followJobOutput(jobId, {
	onChunk, onChunks, onDone, onState, onError, signal, interval = 500, after = 0,
} = {}) {
	let state = null;
	const id = encodeURIComponent(jobId);
	const last = await poll({
		fn: (sig) => api.get(`/api/jobs/${id}/output?after=${after}`, { toast: false, signal: sig }),
		interval: (r) => (r && fullPage(r) ? 0 : interval),
		onResult: (r) => {
			for (const c of r.chunks)
				onChunk?.(c);
			if (r.chunks.length)
				onChunks?.(r.chunks);
			if (typeof r.next_after === "number")
				after = r.next_after;
			if (r.state !== state) {
				state = r.state;
				onState?.(state);
			}
		},
		until: (r) => r.done,
		onError,
		signal,
	});
	if (last === undefined)
		return undefined;
	const final = { state: last.state, exit_code: last.exit_code };
	onDone?.(final);
	return final;
}
