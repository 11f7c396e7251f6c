// screens/log.js - the whole output of one job (#/log/<job id>) in the
// log view (logview.js): every line kept, only the visible ones drawn,
// following the tail while the reader is at the bottom. The Jobs screen
// shows a job's output bounded to its last 512 KiB; this is the rest.
//
// The output is read with GET /api/jobs/{id}/output?after=SEQ, a page
// after another while the answer is full (poll.js followJobOutput), then
// about twice a second until the job is done. #log-state is the job's
// state, #log-lines the number of lines read, #job-log the view.

import { api } from "../api.js";
import { el, replaceChildren } from "../dom.js";
import { logView } from "../logview.js";
import { setPill, statePill } from "../pill.js";
import { followJobOutput, retryable } from "../poll.js";
import { toastError } from "../toast.js";

export function render(main, { params, signal }) {
	const id = params[0] || "";
	if (!/^[1-9][0-9]{0,18}$/.test(id)) {
		replaceChildren(main, el("section", { class: "screen" },
			el("div", { class: "card empty" }, el("h1", { text: "No such log" }),
				el("p", {}, el("a", { href: "#/jobs" }, "Back to the jobs")))));
		return null;
	}
	const state = statePill("loading", { id: "log-state", "aria-live": "polite" });
	const lines = el("span", { id: "log-lines", class: "muted small" });
	const log = logView({ id: "job-log", label: `Output of job ${id}` });
	const summary = el("p", { id: "log-summary", class: "muted small" });

	replaceChildren(main,
		el("section", { class: "screen", "aria-labelledby": "log-title" },
			el("p", { class: "crumbs" }, el("a", { href: `#/jobs/${id}`, id: "back-to-job" }, "\u2190 Job #" + id)),
			el("header", { class: "screen-head screen-head-row" },
				el("div", { class: "detail-head" },
					el("h1", { id: "log-title" }, `Log of job #${id}`), state, lines)),
			el("section", { class: "card" }, summary, log.element)));
	document.title = `Log of job #${id} \u00b7 anyon`;

	const showLines = () => {
		lines.textContent = `${log.lines.toLocaleString()} lines`;
	};

	(async () => {
		try {
			const r = await api.get(`/api/jobs/${encodeURIComponent(id)}`, { toast: false, signal });
			summary.textContent = `${r.job.kind} job`;
		} catch (err) {
			if (err.name === "AbortError")
				return;
			replaceChildren(main, el("section", { class: "screen" },
				el("div", { class: "card empty", id: "log-missing" }, el("h1", { text: `Job #${id}` }),
					el("p", { class: "muted" }, err.message),
					el("p", {}, el("a", { href: "#/jobs" }, "Back to the jobs")))));
			return;
		}
		const started = performance.now();
		let writeMs = 0; // of it, in the log view's write and draw
		const final = await followJobOutput(id, {
			onChunks: (chunks) => {
				const t0 = performance.now();
				log.write(chunks);
				log.flush();
				writeMs += performance.now() - t0;
				showLines();
			},
			onState: (s) => setPill(state, s),
			onError: (err, failures) => {
				if (retryable(err) && failures === 1)
					toastError("Lost the output stream: " + err.message + " (retrying)", { code: err.code });
				return retryable(err);
			},
			signal,
		}).catch((err) => {
			toastError(err.message, { code: err.code });
			return undefined;
		});
		if (!final)
			return;
		log.finish("(no output)");
		setPill(state, final.state);
		showLines();
		// How long reading and drawing it all took, for the curious (and t9300).
		log.view.dataset.loadMs = String(Math.round(performance.now() - started));
		log.view.dataset.writeMs = String(Math.round(writeMs));
	})();
	return null;
}
