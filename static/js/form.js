// form.js - labelled fields whose errors sit next to them.
//
//   const f = field({ id: "task-title", label: "Title", control: el("input", {...}) });
//   form.append(f.node);
//   f.setError("must not be empty");      // aria-invalid, message below it
//   fieldError({ title: f, description: g }, err, fallbackNode)
//
// fieldError() puts an ApiError whose body names a field (error.field) next
// to that field and focuses it; any other error goes into fallbackNode (a
// role="alert" paragraph of the form). Messages are text, never markup.

import { el } from "./dom.js";

export function field({ id, label, control, hint }) {
	control.id = id;
	const errId = id + "-error";
	const hintId = hint ? id + "-hint" : null;
	const error = el("p", { id: errId, class: "hint error-text field-error", hidden: true });
	const node = el("div", { class: "field" },
		el("label", { for: id }, label),
		control,
		hint ? el("p", { id: hintId, class: "hint" }, hint) : null,
		error);
	const describe = () => {
		const ids = [hintId, error.hidden ? null : errId].filter(Boolean);
		if (ids.length)
			control.setAttribute("aria-describedby", ids.join(" "));
		else
			control.removeAttribute("aria-describedby");
	};
	describe();
	const f = {
		node, control, error,
		setError(message) {
			error.textContent = message || "";
			error.hidden = !message;
			if (message)
				control.setAttribute("aria-invalid", "true");
			else
				control.removeAttribute("aria-invalid");
			describe();
		},
	};
	control.addEventListener("input", () => f.setError(null));
	return f;
}

// Clears every field's error and the fallback's text.
export function clearErrors(fields, fallback) {
	for (const f of Object.values(fields))
		f.setError(null);
	if (fallback) {
		fallback.textContent = "";
		fallback.hidden = true;
	}
}

// Shows err next to the field it names, else in fallback. Returns the
// field's name, or null.
export function fieldError(fields, err, fallback) {
	const name = err && err.body && err.body.error && err.body.error.field;
	const f = name && fields[name];
	if (f) {
		f.setError(err.message);
		f.control.focus();
		return name;
	}
	if (fallback) {
		fallback.textContent = err ? err.message : "Something went wrong.";
		fallback.hidden = false;
	}
	return null;
}
