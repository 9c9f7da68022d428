/**
 * What an audit row says a call changed: its params, without the object's id (the row names the
 * object already), with every secret as "***" and every large value as its size. Pure, and
 * bounded: a value nested past MAX_DEPTH is not walked (the api refuses such bodies anyway).
 */
import { redactBody, type SecretFields } from "../task-secrets.ts";

/** A key whose value is never written down, at any depth. */
export const SENSITIVE_KEY = /password|secret|token|key|credential|authorization/i;

/** A top-level field whose JSON is larger than this (bytes) is written as `"<n bytes>"`. */
export const MAX_FIELD_BYTES = 2048;

/** The whole `changes` of one row, at most (bytes of JSON); past it, one `{ truncated }` note. */
export const MAX_CHANGES_BYTES = 16 * 1024;

const MAX_DEPTH = 16;
export const MASK = "***";

/** `value` with the value of every sensitive key replaced by "***", at every depth. */
export function redact(value: unknown, depth = 0): unknown {
	if (value === null || typeof value !== "object") return value;
	if (depth >= MAX_DEPTH) return "<nested>";
	if (Array.isArray(value)) return value.map(item => redact(item, depth + 1));
	const out: Record<string, unknown> = {};
	for (const [key, child] of Object.entries(value as Record<string, unknown>))
		out[key] = SENSITIVE_KEY.test(key) ? MASK : redact(child, depth + 1);
	return out;
}

/** Bytes of `value` as JSON (0 for what JSON cannot say, such as undefined). */
export function jsonBytes(value: unknown): number {
	const text = JSON.stringify(value);
	return text === undefined ? 0 : Buffer.byteLength(text);
}

/**
 * The changes of a call: `params` minus `objectParam`, redacted, each large field as its size;
 * null when nothing is left.
 */
export function changesOf(params: unknown, objectParam?: string): Record<string, unknown> | null {
	if (params === null || typeof params !== "object" || Array.isArray(params)) return null;
	params = withoutSealed(params as Record<string, unknown>);
	const out: Record<string, unknown> = {};
	let total = 2;
	for (const [key, value] of Object.entries(params as Record<string, unknown>)) {
		if (key === objectParam || value === undefined) continue;
		let shown = SENSITIVE_KEY.test(key) ? MASK : redact(value);
		const bytes = jsonBytes(shown);
		if (bytes > MAX_FIELD_BYTES) shown = `<${bytes} bytes>`;
		out[key] = shown;
		total += key.length + 4 + Math.min(bytes, MAX_FIELD_BYTES);
	}
	if (Object.keys(out).length === 0) return null;
	if (total > MAX_CHANGES_BYTES) return { truncated: `<${total} bytes>`, fields: Object.keys(out).slice(0, 100) };
	return out;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
	value !== null && typeof value === "object" && !Array.isArray(value);

/**
 * What is sealed at rest is never written down in the clear: a task body's sensitive payload
 * paths (a task, a job's `task`, a batch's `tasks`) and the body of a script marked sensitive.
 */
export function withoutSealed(params: Record<string, unknown>): Record<string, unknown> {
	let out: Record<string, unknown> = redactBody(params as SecretFields) as Record<string, unknown>;
	if (isObject(out.task)) out = { ...out, task: redactBody(out.task as SecretFields) };
	if (Array.isArray(out.tasks))
		out = { ...out, tasks: out.tasks.map(task => (isObject(task) ? redactBody(task as SecretFields) : task)) };
	if (out.sensitive === true && "body" in out) out = { ...out, body: MASK };
	return out;
}
