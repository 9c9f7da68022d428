/**
 * The REST routes of a running Tern, read from its api service's settings (the table moleculer-web
 * serves), and who the access table says may call each: the role matrix and the fuzz tests are
 * generated from these, so a new route is covered (or fails for want of an ACCESS entry) unseen.
 */
import type { ServiceBroker } from "moleculer";
import { ACCESS, type ActionAccess } from "../../lib/contracts/access.ts";
import type { Role } from "../../lib/contracts.ts";

export interface RouteAlias {
	method: string;
	/** The full path, with its `:params`, e.g. `/api/jobs/:id`. */
	path: string;
	action: string;
	/** Whether the route authenticates its callers (401 without a token). */
	authenticated: boolean;
}

interface RouteSetting {
	path?: string;
	authentication?: boolean;
	aliases?: Record<string, unknown>;
}

/** Every alias of every route of the broker's `api` service. */
export function routeAliases(broker: ServiceBroker): RouteAlias[] {
	const api = broker.getLocalService("api") as unknown as { settings: { routes: RouteSetting[] } };
	const out: RouteAlias[] = [];
	for (const route of api.settings.routes) {
		const prefix = (route.path ?? "").replace(/\/$/, "");
		for (const [key, target] of Object.entries(route.aliases ?? {})) {
			const [method = "", path = ""] = key.trim().split(/\s+/);
			const action = Array.isArray(target) ? target[target.length - 1] : target;
			if (typeof action !== "string") continue;
			out.push({ method, path: `${prefix}/${path}`, action, authenticated: route.authentication === true });
		}
	}
	return out;
}

/** Who calls: nobody, a user of a role, a terminal, or an API token of scope read (of an admin). */
export type Caller = "anonymous" | Role | "terminal" | "token:read";

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** Whether the access table lets `caller` call an action with `rule` (worked out here, not by the code under test). */
export function allowed(rule: ActionAccess, caller: Caller): boolean {
	if (rule.access === "public") return true;
	if (caller === "anonymous") return false;
	if (caller === "terminal") return rule.access === "terminal" || rule.access === "terminal-or-viewer";
	if (rule.access === "terminal") return false;
	const role: Role = caller === "token:read" ? "admin" : caller;
	const roleOk = rule.access === "terminal-or-viewer" || RANK[role] >= RANK[rule.access];
	return roleOk && (caller !== "token:read" || rule.scope === "read");
}

export function accessOf(action: string): ActionAccess | undefined {
	return Object.hasOwn(ACCESS, action) ? ACCESS[action] : undefined;
}
