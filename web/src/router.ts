/**
 * The console's routes: the pages of `lib/contracts/console.ts` (the same table the server
 * answers with `index.html`), each with its component, loaded when first opened. A page that
 * needs a user sends the person to `/login` and back; an admin page sends others home.
 */
import { createRouter, createWebHistory, type RouteComponent, type RouteRecordRaw } from "vue-router";
import { CONSOLE_PAGES } from "../../lib/contracts/console.ts";
import { can, session } from "./session.ts";

/** Pages that only make something: shown to those who may make it. */
const MAKES: Record<string, string> = {
	"task-new": "dispatcher.submit",
	"job-new": "scheduler.create",
	"job-edit": "scheduler.update",
	"terminal-new": "terminals.register"
};

type Loader = () => Promise<RouteComponent | { default: RouteComponent }>;

/** Each page's component, by the page's name. */
export const PAGE_COMPONENTS: Record<string, Loader> = {
	dashboard: () => import("./pages/dashboard/DashboardPage.vue"),
	login: () => import("./pages/LoginPage.vue"),
	tasks: () => import("./pages/tasks/TasksPage.vue"),
	"task-new": () => import("./pages/tasks/TaskNewPage.vue"),
	task: () => import("./pages/tasks/TaskPage.vue"),
	jobs: () => import("./pages/jobs/JobsPage.vue"),
	"job-new": () => import("./pages/jobs/JobEditPage.vue"),
	job: () => import("./pages/jobs/JobPage.vue"),
	"job-edit": () => import("./pages/jobs/JobEditPage.vue"),
	terminals: () => import("./pages/terminals/TerminalsPage.vue"),
	"terminal-new": () => import("./pages/terminals/TerminalNewPage.vue"),
	terminal: () => import("./pages/terminals/TerminalPage.vue"),
	alerts: () => import("./pages/alerts/AlertsPage.vue"),
	"alert-rules": () => import("./pages/alerts/RulesPage.vue"),
	"alert-channels": () => import("./pages/alerts/ChannelsPage.vue"),
	silences: () => import("./pages/alerts/SilencesPage.vue"),
	users: () => import("./pages/admin/UsersPage.vue"),
	audit: () => import("./pages/admin/AuditPage.vue"),
	account: () => import("./pages/admin/AccountPage.vue"),
	alarm: () => import("./pages/alarm/AlarmPage.vue")
};

const routes: RouteRecordRaw[] = [
	...CONSOLE_PAGES.map(page => ({
		path: page.path,
		name: page.name,
		component: PAGE_COMPONENTS[page.name]!,
		meta: {
			title: page.title,
			admin: page.admin === true,
			open: page.open === true,
			bare: page.name === "alarm" || page.name === "login"
		}
	})),
	{ path: "/:rest(.*)*", name: "not-found", component: () => import("./pages/NotFoundPage.vue"), meta: { title: "Not found" } }
];

export const router = createRouter({ history: createWebHistory(), routes });

router.beforeEach(to => {
	if (!to.meta.open && !session.token) return { name: "login", query: to.fullPath === "/" ? {} : { next: to.fullPath } };
	if (to.meta.admin && session.role !== "admin") return { name: "dashboard" };
	const makes = MAKES[String(to.name)];
	if (makes && !can(makes)) return { name: "dashboard" };
	return true;
});

router.afterEach(to => {
	document.title = `${String(to.meta.title ?? "Tern")} · Tern`;
});

declare module "vue-router" {
	interface RouteMeta {
		title?: string;
		admin?: boolean;
		open?: boolean;
		/** Shown without the console's navigation (sign-in, the alarm terminal). */
		bare?: boolean;
	}
}
