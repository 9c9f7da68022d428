/**
 * The web console's pages, by path. The console routes in the browser (history mode), so a
 * reload or a shared link asks the server for one of these paths: the api answers each with the
 * console's `index.html`. The console's router is built from the same table (a test checks that
 * they agree), so a page cannot exist on one side only.
 */
export interface ConsolePage {
	/** A vue-router path (`:id` for a parameter). */
	path: string;
	/** The page's name in the router and in the screenshots. */
	name: string;
	title: string;
	/** Pages an admin alone may open (the API refuses their data to anyone else). */
	admin?: true;
	/** Shown without a user's sign-in. */
	open?: true;
}

export const CONSOLE_PAGES: readonly ConsolePage[] = [
	{ path: "/", name: "dashboard", title: "Dashboard" },
	{ path: "/login", name: "login", title: "Sign in", open: true },
	{ path: "/tasks", name: "tasks", title: "Tasks" },
	{ path: "/tasks/new", name: "task-new", title: "New task" },
	{ path: "/tasks/:id", name: "task", title: "Task" },
	{ path: "/jobs", name: "jobs", title: "Jobs" },
	{ path: "/jobs/new", name: "job-new", title: "New job" },
	{ path: "/jobs/:id", name: "job", title: "Job" },
	{ path: "/jobs/:id/edit", name: "job-edit", title: "Edit job" },
	{ path: "/terminals", name: "terminals", title: "Terminals" },
	{ path: "/terminals/new", name: "terminal-new", title: "Register a terminal" },
	{ path: "/terminals/:id", name: "terminal", title: "Terminal" },
	{ path: "/alerts", name: "alerts", title: "Alerts" },
	{ path: "/alerts/rules", name: "alert-rules", title: "Alert rules" },
	{ path: "/alerts/channels", name: "alert-channels", title: "Alert channels" },
	{ path: "/alerts/silences", name: "silences", title: "Silences" },
	{ path: "/users", name: "users", title: "Users", admin: true },
	{ path: "/audit", name: "audit", title: "Audit log", admin: true },
	{ path: "/account", name: "account", title: "Account" },
	{ path: "/alarm", name: "alarm", title: "Alarm", open: true }
];
