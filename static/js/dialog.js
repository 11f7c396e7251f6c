// dialog.js - modal dialogs on the native <dialog> element.
//
//   const d = modal({ id: "import-dialog", title: "Import from GitHub" });
//   d.body.append(...);
//   d.open();            // showModal(); focus moves in, the page is inert
//   d.close();           // or Escape, or the close button
//
// The dialog is labelled by its title, closes on Escape (the browser's
// "cancel" event) and on a click on the backdrop when backdropClose is true,
// gives focus back to whatever had it when it opened, and removes itself
// from the page once closed. onClose() runs once, after it closed.
// modal.isOpen(id) tells whether a dialog with that id is showing.

import { el } from "./dom.js";

let serial = 0;

export function modal({ id, title, className = "", onClose, backdropClose = true, wide = false }) {
	const titleId = (id || "modal-" + ++serial) + "-title";
	const heading = el("h2", { id: titleId, class: "modal-title" }, title);
	const closeButton = el("button", {
		class: "modal-close", type: "button", "aria-label": "Close", title: "Close (Esc)",
	}, "\u00d7");
	const body = el("div", { class: "modal-body" });
	const foot = el("div", { class: "modal-foot", hidden: true });
	const dialog = el("dialog", {
		id, class: ("modal " + (wide ? "modal-wide " : "") + className).trim(),
		"aria-labelledby": titleId,
	},
		el("div", { class: "modal-head" }, heading, closeButton),
		body,
		foot);

	let opener = null;
	let closed = false;

	closeButton.addEventListener("click", () => dialog.close());
	if (backdropClose) {
		// A click on the ::backdrop lands on the dialog element itself.
		dialog.addEventListener("mousedown", (ev) => {
			if (ev.target !== dialog)
				return;
			const r = dialog.getBoundingClientRect();
			const inside = ev.clientX >= r.left && ev.clientX <= r.right &&
				ev.clientY >= r.top && ev.clientY <= r.bottom;
			if (!inside)
				dialog.close();
		});
	}
	dialog.addEventListener("close", () => {
		if (closed)
			return;
		closed = true;
		dialog.remove();
		if (opener && opener.isConnected && typeof opener.focus === "function")
			opener.focus({ preventScroll: true });
		onClose?.();
	});

	return {
		dialog,
		body,
		foot,
		heading,
		setTitle(text) {
			heading.textContent = text;
		},
		open() {
			opener = document.activeElement;
			document.body.append(dialog);
			dialog.showModal();
			// Focus the element marked autofocus, else the first control
			// of the body (not the close button).
			const first = dialog.querySelector("[autofocus]") ||
				body.querySelector("button:not([disabled]), a[href], input, select, textarea, [tabindex='0']");
			(first || closeButton).focus();
		},
		close() {
			if (dialog.open)
				dialog.close();
		},
		get isOpen() {
			return dialog.open;
		},
	};
}

modal.isOpen = (id) => !!document.getElementById(id)?.open;

// confirmDialog({id, title, message, confirm, danger}) -> Promise<boolean>:
// true when the user pressed the confirm button, false when the dialog was
// closed any other way (Escape, Cancel, the close button). Cancel has the
// focus, so Enter alone never destroys anything.
export function confirmDialog({ id = "confirm-dialog", title, message, confirm = "OK", danger = false }) {
	return new Promise((resolve) => {
		let answer = false;
		const d = modal({ id, title, onClose: () => resolve(answer) });
		const cancel = el("button", { class: "btn", type: "button", id: id + "-cancel", autofocus: true,
			on: { click: () => d.close() } }, "Cancel");
		const ok = el("button", { class: "btn " + (danger ? "btn-danger" : "btn-primary"), type: "button",
			id: id + "-ok", on: { click: () => { answer = true; d.close(); } } }, confirm);
		d.body.append(el("p", { class: "modal-lead" }, message));
		d.foot.hidden = false;
		d.foot.append(el("span", { class: "spacer" }), cancel, ok);
		d.open();
	});
}
