/**
 * Who may connect: the token of a terminal or a follower, checked by `auth`, and what a terminal
 * says of itself at connect (concurrency, capabilities), whatever the transport.
 */
import { call } from "../../lib/actions.ts";
import type { IncomingMessage } from "node:http";
import type { ServiceBroker } from "moleculer";
import type { Principal, TerminalRecord } from "../../lib/contracts.ts";
import { Errors } from "../../lib/errors.ts";

export async function verifyToken(broker: ServiceBroker, token: unknown): Promise<Principal> {
	if (typeof token !== "string" || token === "") throw Errors.unauthorized("A token is required");
	return call(broker, "auth.verify", { token });
}

/** A follower of tasks: a user, not a terminal. */
export async function verifyUser(broker: ServiceBroker, token: unknown): Promise<Principal> {
	const principal = await verifyToken(broker, token);
	if (principal.kind !== "user") throw Errors.forbidden("A user token is required to follow tasks");
	return principal;
}

export interface Admitted {
	terminal: TerminalRecord;
	concurrency: number;
}

/**
 * Authenticates a terminal connection and settles its concurrency. `claimedId`: the terminal the
 * connection says it is (the raw WebSocket's path), null when only the token says so.
 */
export async function admitTerminal(
	broker: ServiceBroker,
	token: unknown,
	claimedId: string | null,
	advertised: unknown
): Promise<Admitted> {
	const principal = await verifyToken(broker, token);
	if (principal.kind !== "terminal") throw Errors.forbidden("A terminal token is required here, not a user token");
	if (claimedId !== null && claimedId !== principal.terminalId)
		throw Errors.forbidden(`The token is for terminal '${principal.terminalId}', not '${claimedId}'`);
	const terminal = await call(broker, "terminals.resolve", {
		id: principal.terminalId
	});
	if (!terminal) throw Errors.terminalNotFound(principal.terminalId);
	if (!terminal.enabled) throw Errors.terminalDisabled(terminal.id);
	let concurrency = terminal.concurrency;
	if (advertised !== undefined && advertised !== null) {
		const n = Number(advertised);
		if (!Number.isInteger(n) || n < 1 || n > 10_000)
			throw Errors.validation("'concurrency' must be an integer from 1 to 10000", [
				{ field: "concurrency", message: "'concurrency' must be an integer from 1 to 10000" }
			]);
		concurrency = n;
	}
	return { terminal, concurrency };
}

/** `["command","http"]` or `"command,http"` → a list; anything else → undefined (any type). */
export function parseCapabilities(value: unknown): string[] | undefined {
	const list = Array.isArray(value) ? value : typeof value === "string" ? value.split(",") : null;
	if (!list) return undefined;
	const names = list
		.filter((v): v is string => typeof v === "string")
		.map(v => v.trim())
		.filter(Boolean);
	return names.slice(0, 64);
}

/** The token of an HTTP upgrade: `Authorization: Bearer …`, else `?token=`. */
export function bearer(req: IncomingMessage): string | null {
	const header = req.headers.authorization;
	if (header?.startsWith("Bearer ")) return header.slice(7).trim();
	return new URL(req.url ?? "/", "http://x").searchParams.get("token");
}
