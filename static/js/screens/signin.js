// screens/signin.js - the sign-in screen of cloud mode. Until someone signs
// in, it is all the app shows; #signin-button opens the device flow (whose
// completion reloads the session: app.js then goes to the board). reason,
// if given, says why the user is here again (#signin-reason).

import { el, replaceChildren } from "../dom.js";
import { githubMark, openDeviceFlow } from "../github.js";

export function render(main, { reason } = {}) {
	const button = el("button", { id: "signin-button", class: "btn btn-primary btn-lg btn-block", type: "button" },
		githubMark(), "Sign in with GitHub");
	button.addEventListener("click", () => openDeviceFlow({ purpose: "signin" }));

	replaceChildren(main,
		el("section", { class: "signin", id: "signin-screen", "aria-labelledby": "signin-title" },
			el("div", { class: "card signin-card" },
				el("div", { class: "signin-mark", "aria-hidden": "true" }, el("span", { class: "brand-mark" })),
				el("h1", { id: "signin-title" }, "Sign in to anyon"),
				el("p", { class: "muted" },
					"Run coding agents against your GitHub repositories, each in its own container."),
				reason ? el("p", { class: "callout callout-info", id: "signin-reason" }, reason) : null,
				button,
				el("p", { class: "muted small signin-foot" },
					"You will get a one-time code to enter on GitHub. anyon asks for access to your repositories " +
					"(scope repo) so it can clone them for your tasks."),
				el("p", { class: "callout callout-warn small", id: "signin-code-warning" },
					"Only enter a code that you started here yourself. A code someone else sends you " +
					"would sign them in as you. Settings \u2192 Sessions shows every browser signed in as you."))));
	button.focus({ preventScroll: true });
	return null;
}
