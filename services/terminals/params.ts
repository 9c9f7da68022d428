/**
 * The terminals service's action params: each fastest-validator schema beside its TypeScript type.
 * `$$strict` refuses unknown fields, so a typo is an error rather than a silent no-op.
 */
import type { Labels, TerminalPatch } from "../../lib/contracts.ts";

export const idRule = { type: "string", min: 1, max: 128, pattern: /^[A-Za-z0-9_.:-]+$/ };

const labelsRule = {
	type: "multi",
	rules: [
		{ type: "record", key: { type: "string", min: 1, max: 64 }, value: { type: "string", max: 256 } },
		{ type: "array", items: { type: "string", min: 1, max: 64 }, max: 64 }
	]
};
const concurrencyRule = { type: "number", integer: true, min: 1, max: 10_000 };
const nameRule = { type: "string", max: 255 };

export interface RegisterParams {
	id?: string;
	name?: string;
	labels?: Labels | string[];
	concurrency?: number;
}
export const registerParams = {
	id: { ...idRule, optional: true },
	name: { ...nameRule, optional: true },
	labels: { ...labelsRule, optional: true },
	concurrency: { ...concurrencyRule, optional: true },
	$$strict: true
};

export type PatchParams = TerminalPatch & { id: string };
/** The fields PATCH may change; at least one must be given (checked in the action). */
export const PATCH_FIELDS = ["name", "labels", "concurrency"] as const;
export const patchParams = {
	id: idRule,
	name: { ...nameRule, optional: true, nullable: true },
	labels: { ...labelsRule, optional: true },
	concurrency: { ...concurrencyRule, optional: true },
	$$strict: true
};

export const listParams = {
	status: { type: "enum", values: ["online", "offline", "disabled"], optional: true },
	label: { type: "string", max: 321, optional: true }
};
export interface ListParams {
	status?: "online" | "offline" | "disabled";
	/** `key` or `key=value` */
	label?: string;
}

export const byIdParams = { id: idRule };

export const touchParams = { id: idRule, transport: { type: "equal", value: "pull" } };

/** The longest grace period of a key rotation: a week, s. */
export const MAX_GRACE_SECONDS = 7 * 86_400;

export interface RotateKeyParams {
	id: string;
	/** How long the previous key still works, s (0: it dies at once). @defaultValue 0 */
	graceSeconds?: number;
}
export const rotateKeyParams = {
	id: idRule,
	graceSeconds: { type: "number", integer: true, min: 0, max: MAX_GRACE_SECONDS, optional: true },
	$$strict: true
};
