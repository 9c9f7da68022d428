/**
 * Who may call each action from outside, in one table: the api, the gateway and the access
 * middleware read it, the audit log reads which actions change something, and the role matrix
 * test is generated from it and the route table (a route whose action is missing here fails).
 *
 * - `access`: the least a caller must be. `public` needs no token; `terminal` only a terminal
 *   token; `terminal-or-viewer` a terminal or any user; a role, a user with that role or higher.
 * - `scope`: what an API token needs to call it (`read` < `submit` < `admin`); a token never
 *   gets more than its user's role.
 * - `mutates`: the call changes something, so it is written to the audit log.
 * - `object`: the param that names the object acted on, and its kind (`job:<id>`).
 */
import type { Role } from "./core.ts";

export type Access = "public" | "terminal" | "terminal-or-viewer" | Role;
export type TokenScope = "read" | "submit" | "admin";
export const TOKEN_SCOPES: readonly TokenScope[] = ["read", "submit", "admin"];

export interface ActionAccess {
	access: Access;
	scope: TokenScope;
	mutates: boolean;
	object?: { kind: string; param: string };
}

// An admin-only read needs an admin-scoped token: a token's role is capped by its scope (read: viewer).
const read = (access: Access, object?: ActionAccess["object"]): ActionAccess => ({
	access,
	scope: access === "admin" ? "admin" : "read",
	mutates: false,
	...(object ? { object } : {})
});
const change = (access: Access, scope: TokenScope, object?: ActionAccess["object"]): ActionAccess => ({
	access,
	scope,
	mutates: true,
	...(object ? { object } : {})
});
const on = (kind: string, param = "id") => ({ kind, param });

/** Every action a caller outside the cluster may reach, over REST or a socket. */
export const ACCESS: Readonly<Record<string, ActionAccess>> = {
	// auth
	"auth.login": change("public", "read", on("user", "username")),
	"auth.logout": change("viewer", "read"),
	"auth.createUser": change("admin", "admin", on("user", "username")),
	"auth.listUsers": read("admin"),
	"auth.updateUser": change("viewer", "admin", on("user")),
	"auth.removeUser": change("admin", "admin", on("user")),
	"auth.createToken": change("viewer", "admin", on("token", "name")),
	"auth.listTokens": read("viewer"),
	"auth.revokeToken": change("viewer", "admin", on("token")),

	// tasks
	"dispatcher.submit": change("operator", "submit", on("task", "type")),
	"dispatcher.submitBatch": change("operator", "submit"),
	"dispatcher.pull": change("terminal", "read", on("terminal", "terminalId")),
	"dispatcher.ack": change("terminal", "read", on("task", "taskId")),
	"dispatcher.progress": change("terminal", "read", on("task", "taskId")),
	"dispatcher.result": change("terminal", "read", on("task", "taskId")),
	"dispatcher.query": read("terminal-or-viewer", on("task", "taskId")),
	"dispatcher.list": read("viewer"),
	"dispatcher.get": read("terminal-or-viewer", on("task")),
	"dispatcher.cancel": change("operator", "submit", on("task")),
	"dispatcher.logs": read("terminal-or-viewer", on("task")),
	"dispatcher.purge": change("admin", "admin"),

	// terminals
	"terminals.list": read("viewer"),
	"terminals.register": change("operator", "admin", on("terminal")),
	"terminals.get": read("terminal-or-viewer", on("terminal")),
	"terminals.disable": change("operator", "admin", on("terminal")),
	"terminals.enable": change("operator", "admin", on("terminal")),
	"terminals.rotateKey": change("operator", "admin", on("terminal")),
	"terminals.patch": change("operator", "admin", on("terminal")),
	"terminals.delete": change("operator", "admin", on("terminal")),
	"terminals.drain": change("operator", "admin", on("terminal")),
	"terminals.undrain": change("operator", "admin", on("terminal")),

	// jobs
	"scheduler.create": change("operator", "submit", on("job", "name")),
	"scheduler.list": read("viewer"),
	"scheduler.preview": read("viewer"),
	"scheduler.get": read("viewer", on("job")),
	"scheduler.update": change("operator", "submit", on("job")),
	"scheduler.remove": change("operator", "submit", on("job")),
	"scheduler.execute": change("operator", "submit", on("job")),
	"scheduler.cancel": change("operator", "submit", on("job")),
	"scheduler.pause": change("operator", "submit", on("job")),
	"scheduler.resume": change("operator", "submit", on("job")),
	"scheduler.history": read("viewer", on("job")),

	// scripts
	"scripts.create": change("operator", "admin", on("script", "name")),
	"scripts.catalog": read("terminal-or-viewer"),
	"scripts.latest": read("terminal-or-viewer", on("script", "name")),
	"scripts.getVersion": read("terminal-or-viewer", on("script", "name")),
	"scripts.remove": change("admin", "admin", on("script", "name")),

	// alerts
	"alert.listRules": read("viewer"),
	"alert.createRule": change("admin", "admin", on("rule", "name")),
	"alert.getRule": read("viewer", on("rule")),
	"alert.updateRule": change("admin", "admin", on("rule")),
	"alert.removeRule": change("admin", "admin", on("rule")),
	"alert.listChannels": read("viewer"),
	"alert.createChannel": change("admin", "admin", on("channel", "name")),
	"alert.getChannel": read("viewer", on("channel")),
	"alert.updateChannel": change("admin", "admin", on("channel")),
	"alert.removeChannel": change("admin", "admin", on("channel")),
	"alert.testChannel": change("admin", "admin", on("channel")),
	"alert.listAlerts": read("viewer"),
	"alert.getAlert": read("viewer", on("alert")),
	"alert.ack": change("operator", "submit", on("alert")),
	"alert.listSilences": read("viewer"),
	"alert.createSilence": change("operator", "submit"),
	"alert.endSilence": change("operator", "submit", on("silence")),

	// system and audit
	"monitor.status": read("viewer"),
	"monitor.config": read("admin"),
	"monitor.updateConfig": change("admin", "admin"),
	"monitor.reconcile": change("admin", "admin"),
	"monitor.version": read("public"),
	"api.metrics": read("public"),
	"api.live": read("public"),
	"api.ready": read("public"),
	"api.console": read("public"),
	"api.openapi": read("public"),
	"api.reference": read("public"),
	"audit.list": read("admin"),
	"audit.verify": read("admin")
};

/** Socket messages, by namespace and event, and the action each one amounts to. */
export const SOCKET_ACCESS: Readonly<Record<string, ActionAccess>> = {
	"terminal:ack": ACCESS["dispatcher.ack"],
	"terminal:progress": ACCESS["dispatcher.progress"],
	"terminal:result": ACCESS["dispatcher.result"],
	"terminal:heartbeat": read("terminal"),
	"client:subscribe": read("viewer", on("task", "taskId")),
	"client:unsubscribe": read("viewer", on("task", "taskId"))
};

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
const SCOPE_RANK: Record<TokenScope, number> = { read: 0, submit: 1, admin: 2 };

/** Whether a user of `role` meets `access` (terminals are judged by the caller). */
export function roleMeets(role: Role, access: Access): boolean {
	if (access === "public" || access === "terminal-or-viewer") return true;
	if (access === "terminal") return false;
	return RANK[role] >= RANK[access];
}

/** Whether a token of `scope` may make a call that needs `needed`. */
export function scopeMeets(scope: TokenScope, needed: TokenScope): boolean {
	return SCOPE_RANK[scope] >= SCOPE_RANK[needed];
}
