/**
 * The audit middleware: every mutating call from outside (lib/contracts/access.ts) is reported to
 * the audit log with its caller, object, outcome and changes.
 */
import type { Middleware } from "moleculer";

export const AuditMiddleware: Middleware = {
	name: "Audit"
};
