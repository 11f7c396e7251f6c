// toast.js - short messages in the corner: error, info, success.
//
//   showToast("Job #4 cancelled", {kind: "success"});
//
// Toasts live in #toasts (an aria-live region in index.html), dismiss
// themselves after a while (errors stay longer), pause while hovered or
// focused, and carry a dismiss button. The same message shown twice while
// the first is still up is not repeated: the visible one restarts its timer.

const DEFAULT_TIMEOUT = { error: 9000, info: 5000, success: 4000 };
const MAX_VISIBLE = 5;

function container() {
	let c = document.getElementById("toasts");
	if (!c) {
		c = document.createElement("div");
		c.id = "toasts";
		c.className = "toasts";
		c.setAttribute("aria-live", "polite");
		document.body.append(c);
	}
	return c;
}

// showToast(message, {kind, timeout, code}) -> a function that dismisses it.
// kind is "error", "info" or "success"; timeout 0 keeps it until dismissed;
// code (an API error code) lands in data-code for tests and styling.
export function showToast(message, { kind = "info", timeout, code } = {}) {
	if (!(kind in DEFAULT_TIMEOUT))
		kind = "info";
	const ms = timeout ?? DEFAULT_TIMEOUT[kind];
	const c = container();

	for (const t of c.querySelectorAll(".toast")) {
		if (t.dataset.kind === kind && t.dataset.message === message) {
			t.anyonRestart?.();
			return t.anyonDismiss;
		}
	}

	const toast = document.createElement("div");
	toast.className = "toast toast-" + kind;
	toast.dataset.kind = kind;
	toast.dataset.message = message;
	if (code)
		toast.dataset.code = code;
	// Errors interrupt a screen reader; the rest wait their turn.
	toast.setAttribute("role", kind === "error" ? "alert" : "status");

	const icon = document.createElement("span");
	icon.className = "toast-icon";
	icon.setAttribute("aria-hidden", "true");
	icon.textContent = kind === "error" ? "!" : kind === "success" ? "\u2713" : "i";

	const text = document.createElement("span");
	text.className = "toast-message";
	text.textContent = message;

	const close = document.createElement("button");
	close.type = "button";
	close.className = "toast-close";
	close.setAttribute("aria-label", "Dismiss");
	close.textContent = "\u00d7";

	toast.append(icon, text, close);

	let timer = 0;
	const dismiss = () => {
		clearTimeout(timer);
		if (!toast.isConnected)
			return;
		toast.classList.add("toast-leaving");
		setTimeout(() => toast.remove(), 150);
	};
	const start = () => {
		clearTimeout(timer);
		if (ms > 0)
			timer = setTimeout(dismiss, ms);
	};
	toast.anyonDismiss = dismiss;
	toast.anyonRestart = start;
	close.addEventListener("click", dismiss);
	toast.addEventListener("mouseenter", () => clearTimeout(timer));
	toast.addEventListener("mouseleave", start);
	toast.addEventListener("focusin", () => clearTimeout(timer));
	toast.addEventListener("focusout", start);

	c.append(toast);
	const all = c.querySelectorAll(".toast:not(.toast-leaving)");
	for (let i = 0; i < all.length - MAX_VISIBLE; i++)
		all[i].anyonDismiss();
	start();
	return dismiss;
}

export const toastError = (message, opts) => showToast(message, { ...opts, kind: "error" });
export const toastInfo = (message, opts) => showToast(message, { ...opts, kind: "info" });
export const toastSuccess = (message, opts) => showToast(message, { ...opts, kind: "success" });
