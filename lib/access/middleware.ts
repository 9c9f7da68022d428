/**
 * The access middleware: every call from outside is checked against its action's declared access
 * (lib/contracts/access.ts) before its handler runs.
 *
 * A call is from outside when it carries a principal (the api and the gateway put the caller's
 * there) and was made by the api, the gateway or no service at all; a call one service makes
 * while serving another (`terminals.delete` cancelling its terminal's tasks) shares its caller's
 * meta but was checked once already, as the outer call. Calls without a principal are internal
 * and trusted.
 */
import type { Context, Middleware, ServiceBroker } from "moleculer";
import type { Principal } from "../contracts.ts";
import { ACCESS, roleMeets, scopeMeets, type ActionAccess } from "../contracts/access.ts";
import { Errors } from "../errors.ts";

/** Services whose calls carry an outside caller's principal as it came. */
const EDGES: ReadonlySet<string> = new Set(["api", "gateway"]);

/** Whether `ctx` is a call from outside, to be judged by its principal (see the module comment). */
export function isExternal(ctx: Pick<Context, "caller" | "meta">): boolean {
	const meta = ctx.meta as { principal?: Principal } | undefined;
	if (!meta?.principal) return false;
	return ctx.caller === null || ctx.caller === undefined || EDGES.has(ctx.caller);
}

const article = (role: string) => (role === "admin" || role === "operator" ? "an" : "a");

/**
 * Throws FORBIDDEN unless `principal` may make a call that `rule` describes. The message names
 * what is needed (a role, a terminal, a token scope), never the action.
 */
export function enforce(rule: ActionAccess, principal: Principal): void {
	const { access } = rule;
	if (access === "public") return;
	if (principal.kind === "terminal") {
		if (access === "terminal" || access === "terminal-or-viewer") return;
		throw Errors.forbidden(`This is for users with the '${access}' role or higher, not terminals`);
	}
	if (access === "terminal") throw Errors.forbidden("This is for terminals: use a terminal's token, not a user's");
	// A token's scope first: its role is capped by the scope, so that is what it lacks.
	const token = principal.apiToken;
	if (token && !scopeMeets(token.scope, rule.scope))
		throw Errors.forbidden(
			`This needs an API token of scope '${rule.scope}' or wider; this token's scope is '${token.scope}'`
		);
	if (!roleMeets(principal.role, access))
		throw Errors.forbidden(
			`This needs the '${access}' role or higher; the caller is ${article(principal.role)} '${principal.role}'`
		);
}

/** The check for `action` by name: nothing to check for an action not in the table. */
export function enforceAction(action: string, principal: Principal | undefined): void {
	if (!principal || !Object.hasOwn(ACCESS, action)) return;
	enforce(ACCESS[action]!, principal);
}

/** The check as a `localAction` hook: refuses before the handler, and before the params are validated. */
function checkAccess(next: (ctx: Context) => Promise<unknown>, action: { name?: string }) {
	const name = action.name ?? "";
	if (!Object.hasOwn(ACCESS, name)) return next;
	const rule = ACCESS[name]!;
	return function checked(ctx: Context) {
		try {
			if (isExternal(ctx)) enforce(rule, (ctx.meta as { principal: Principal }).principal);
		} catch (err) {
			return Promise.reject(err as Error);
		}
		return next(ctx);
	};
}

/**
 * Moleculer puts the middlewares of the options inside its own (the validator among them); this
 * one adds its hook once those are there, so that a caller without the right is refused before
 * validation tells it anything of the params. The audit middleware, listed after it, adds its
 * hook after this one and so wraps it: refusals are audited.
 */
export const AccessMiddleware: Middleware = {
	name: "Access",
	created(broker: ServiceBroker) {
		broker.middlewares.add({ name: "AccessBeforeValidation", localAction: checkAccess });
	}
};
