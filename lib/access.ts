/**
 * Who may call what. The api and the gateway put the caller's principal in `ctx.meta`;
 * calls between services carry none and are trusted (they never come from outside).
 */
import type { Context } from "moleculer";
import type { Principal, Role, TernMeta } from "./contracts.ts";
import { Errors } from "./errors.ts";

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function principalOf(ctx: Context<unknown, TernMeta>): Principal | undefined {
	return ctx.meta.principal;
}

/** A user with at least `role`, or an internal call. Terminals are refused. */
export function requireUser(ctx: Context<unknown, TernMeta>, role: Role = "viewer"): void {
	const principal = ctx.meta.principal;
	if (!principal) return;
	if (principal.kind !== "user") throw Errors.forbidden("This endpoint is for users, not terminals");
	if (RANK[principal.role] < RANK[role])
		throw Errors.forbidden(`Role '${principal.role}' may not do this: '${role}' or higher is needed`);
}

/** A user with at least `role`, a terminal, or an internal call: for what terminals read too. */
export function requireUserOrTerminal(ctx: Context<unknown, TernMeta>, role: Role = "viewer"): void {
	if (ctx.meta.principal?.kind === "terminal") return;
	requireUser(ctx, role);
}

/**
 * The terminal a call acts for: the token's terminal, which must match `claimed` when the
 * caller also names one; internal calls must name it.
 */
export function actingTerminal(ctx: Context<unknown, TernMeta>, claimed?: string): string {
	const principal = ctx.meta.principal;
	if (!principal) {
		if (!claimed) throw Errors.badRequest("'terminalId' is required");
		return claimed;
	}
	if (principal.kind !== "terminal") throw Errors.forbidden("This endpoint is for terminals: use a terminal token");
	if (claimed && claimed !== principal.terminalId)
		throw Errors.forbidden(`The token is for terminal '${principal.terminalId}', not '${claimed}'`);
	return principal.terminalId;
}

/**
 * A user with at least `role`, or the terminal `terminalId` itself (a terminal sees only its own
 * record and its own tasks), or an internal call. `hidden` is what another terminal is told: the
 * object's not-found error, so that a terminal learns nothing of what is not its own.
 */
export function requireUserOrSelf(
	ctx: Context<unknown, TernMeta>,
	terminalId: string | null,
	hidden: () => Error,
	role: Role = "viewer"
): void {
	const principal = ctx.meta.principal;
	if (principal?.kind === "terminal") {
		if (principal.terminalId !== terminalId) throw hidden();
		return;
	}
	requireUser(ctx, role);
}

/** The user who asks, when an operator (whose own objects are the only ones it may manage); null otherwise. */
export function operatorOf(ctx: Context<unknown, TernMeta>): string | null {
	const principal = ctx.meta.principal;
	return principal?.kind === "user" && principal.role === "operator" ? principal.username : null;
}
