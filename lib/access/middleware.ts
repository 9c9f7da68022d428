/**
 * The access middleware: every call from outside is checked against its action's declared access
 * (lib/contracts/access.ts) before its handler runs.
 */
import type { Middleware } from "moleculer";

export const AccessMiddleware: Middleware = {
	name: "Access"
};
