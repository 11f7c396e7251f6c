// screens/board.js - the board. Projects and tasks come with GitHub import;
// until then it says so.

import { el, replaceChildren } from "../dom.js";

export function render(main) {
	replaceChildren(main,
		el("section", { class: "screen", "aria-labelledby": "board-title" },
			el("header", { class: "screen-head" },
				el("h1", { id: "board-title", text: "Board" })),
			el("div", { class: "card empty", "data-testid": "board-empty" },
				el("div", { class: "empty-art", "aria-hidden": "true" },
					el("span"), el("span"), el("span")),
				el("h2", { text: "No projects yet" }),
				el("p", { class: "muted" },
					"Projects and tasks arrive with GitHub import."),
				el("p", {},
					el("a", { class: "btn", href: "#/jobs" }, "Try the job runner")))));
}
