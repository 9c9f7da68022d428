/**
 * A task body's secrets, at rest: `secrets: { NAME: "value" }` and the values at the `sensitive`
 * paths of its payload (`["env.TOKEN"]`) are sealed together into one stored text, the envelope:
 *
 *   { "names": ["NAME"], "sensitive": ["env.TOKEN"], "digest": "h1:<kid>:…", "sealed": "enc:v2:<kid>:…" }
 *
 * The stored payload has each sensitive path replaced by "***". Names and paths are not secret
 * (views show them, with "***" for values); the digest is a keyed hash of the secret values, so
 * that a repeated submit is told from a different one without keeping any plaintext.
 */
import { Errors } from "./errors.ts";
import type { Keyring } from "./keyring.ts";

/** What views show in place of a secret value. */
export const REDACTED = "***";

/** The purpose task (and job) secrets are sealed for (see Keyring.seal). */
export const TASK_CONTEXT = "task-secrets";

/** Bounds of a body's secrets. */
export const SECRET_LIMITS = {
	count: 64,
	valueBytes: 64 * 1024,
	totalBytes: 256 * 1024,
	paths: 32,
	pathLength: 256
} as const;
/** An environment-variable-like name. */
export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** Dotted keys into the payload; a number names an array item. */
export const SENSITIVE_PATH = /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+){0,15}$/;

export interface SecretFields {
	secrets?: Record<string, string>;
	sensitive?: string[];
	payload?: unknown;
}

interface Envelope {
	names: string[];
	sensitive: string[];
	digest: string;
	sealed: string;
}

/** What the envelope seals. */
interface Plain {
	secrets: Record<string, string>;
	values: Record<string, unknown>;
}

function isContainer(value: unknown): value is Record<string, unknown> | unknown[] {
	return value !== null && typeof value === "object";
}

function has(container: Record<string, unknown> | unknown[], key: string): boolean {
	return Array.isArray(container) ? /^\d+$/.test(key) && Number(key) < container.length : Object.hasOwn(container, key);
}

/** The container holding the last key of `path` in `payload`, and that key; null when the path names nothing. */
function locate(payload: unknown, path: string): { parent: Record<string, unknown>; key: string } | null {
	const keys = path.split(".");
	let node: unknown = payload;
	for (const key of keys.slice(0, -1)) {
		if (!isContainer(node) || !has(node, key)) return null;
		node = (node as Record<string, unknown>)[key];
	}
	const last = keys[keys.length - 1];
	return isContainer(node) && has(node, last) ? { parent: node as Record<string, unknown>, key: last } : null;
}

function invalid(field: string, message: string): never {
	throw Errors.validation(message, [{ type: "secrets", field, message }]);
}

/**
 * The checks the validator cannot make: how many secrets, how large, and that each sensitive
 * path names a value of the payload and no two overlap. `prefix` names the body's place
 * (`task.` in a job) in the fields of the error.
 */
export function checkSecrets(body: SecretFields, prefix = ""): void {
	const names = Object.keys(body.secrets ?? {});
	if (names.length > SECRET_LIMITS.count)
		invalid(`${prefix}secrets`, `'${prefix}secrets' holds ${names.length} secrets; at most ${SECRET_LIMITS.count}`);
	let total = 0;
	for (const name of names) {
		if (!SECRET_NAME.test(name))
			invalid(
				`${prefix}secrets.${name.slice(0, 64)}`,
				`A secret's name is letters, digits and '_', not starting with a digit`
			);
		const value = body.secrets![name];
		if (typeof value !== "string") invalid(`${prefix}secrets.${name}`, `'${prefix}secrets.${name}' must be a string`);
		const bytes = Buffer.byteLength(value);
		if (bytes > SECRET_LIMITS.valueBytes)
			invalid(
				`${prefix}secrets.${name}`,
				`'${prefix}secrets.${name}' is ${bytes} bytes; at most ${SECRET_LIMITS.valueBytes}`
			);
		total += bytes;
	}
	if (total > SECRET_LIMITS.totalBytes)
		invalid(`${prefix}secrets`, `'${prefix}secrets' hold ${total} bytes; at most ${SECRET_LIMITS.totalBytes} in all`);
	const paths = body.sensitive ?? [];
	paths.forEach((path, i) => {
		const field = `${prefix}sensitive[${i}]`;
		if (!locate(body.payload, path)) invalid(field, `'${field}' ('${path}') names no value of the payload`);
		const other = paths.find((p, j) => j !== i && (p === path || p.startsWith(`${path}.`)));
		if (other !== undefined) invalid(field, `'${field}' ('${path}') overlaps '${other}'`);
	});
}

/** Sorted keys, so that equal values give equal text (and equal digests). */
function canonical(value: unknown): string {
	return JSON.stringify(value, (_key, v: unknown) =>
		v && typeof v === "object" && !Array.isArray(v)
			? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
			: v
	);
}

/**
 * A checked body's payload with its sensitive paths as "***", and the envelope that seals its
 * secrets (null when it has none).
 */
export function sealSecrets(body: SecretFields, keyring: Keyring): { payload: unknown; envelope: string | null } {
	const secrets = body.secrets ?? {};
	const paths = body.sensitive ?? [];
	if (Object.keys(secrets).length === 0 && paths.length === 0) return { payload: body.payload, envelope: null };
	const payload: unknown = body.payload === undefined ? undefined : structuredClone(body.payload);
	const values: Record<string, unknown> = {};
	for (const path of paths) {
		const at = locate(payload, path)!;
		values[path] = at.parent[at.key];
		at.parent[at.key] = REDACTED;
	}
	const plain = canonical({ secrets, values } satisfies Plain);
	const envelope: Envelope = {
		names: Object.keys(secrets),
		sensitive: paths,
		digest: keyring.digest(plain),
		sealed: keyring.seal(plain, TASK_CONTEXT)
	};
	return { payload, envelope: JSON.stringify(envelope) };
}

/** The secrets and the payload with its sensitive values back: what the terminal that runs the task gets. */
export function openSecrets(
	envelope: string,
	payload: unknown,
	keyring: Keyring
): { payload: unknown; secrets: Record<string, string> } {
	const { sealed } = JSON.parse(envelope) as Envelope;
	const plain = JSON.parse(keyring.open(sealed, TASK_CONTEXT)) as Plain;
	const restored: unknown = payload === undefined || payload === null ? payload : structuredClone(payload);
	for (const [path, value] of Object.entries(plain.values)) {
		const at = locate(restored, path);
		if (at) at.parent[at.key] = value;
	}
	return { payload: restored, secrets: plain.secrets };
}

/** What answers show of a body's secrets: each name with "***", and the sensitive paths. */
export function redactedSecrets(envelope: string | null): { secrets?: Record<string, string>; sensitive?: string[] } {
	if (!envelope) return {};
	const { names, sensitive } = JSON.parse(envelope) as Envelope;
	const shown: { secrets?: Record<string, string>; sensitive?: string[] } = {};
	if (names.length > 0) shown.secrets = Object.fromEntries(names.map(name => [name, REDACTED]));
	if (sensitive.length > 0) shown.sensitive = sensitive;
	return shown;
}

/**
 * Whether two envelopes seal the same secrets: `fresh` (sealed just now, with the active key) is
 * opened and its digest taken under the key of `earlier`'s digest. Never compares stored plaintext.
 */
export function sameSecrets(earlier: string | null, fresh: string | null, keyring: Keyring): boolean {
	if (!earlier || !fresh) return !earlier && !fresh;
	const a = JSON.parse(earlier) as Envelope;
	const b = JSON.parse(fresh) as Envelope;
	if (canonical([...a.names].sort()) !== canonical([...b.names].sort())) return false;
	if (canonical([...a.sensitive].sort()) !== canonical([...b.sensitive].sort())) return false;
	return keyring.matches(a.digest, keyring.open(b.sealed, TASK_CONTEXT));
}

/** The envelope with its values sealed, and its digest made, with the active key. */
export function resealEnvelope(envelope: string, keyring: Keyring): string {
	const parsed = JSON.parse(envelope) as Envelope;
	if (keyring.isCurrent(parsed.sealed) && keyring.isCurrent(parsed.digest)) return envelope;
	const plain = keyring.open(parsed.sealed, TASK_CONTEXT);
	return JSON.stringify({ ...parsed, digest: keyring.digest(plain), sealed: keyring.seal(plain, TASK_CONTEXT) });
}

/** The text only an envelope sealed with key `kid` contains (for a LIKE pattern). */
export function currentEnvelopeMark(kid: string): string {
	return `"sealed":"enc:v2:${kid}:`;
}

/**
 * A task body as a log line or an audit entry may record it: each secret's value and each
 * sensitive payload value "***" (the body itself is left alone).
 */
export function redactBody<T extends SecretFields>(body: T): T {
	if (!body.secrets && !body.sensitive?.length) return body;
	const copy: T = { ...body };
	if (body.secrets) copy.secrets = Object.fromEntries(Object.keys(body.secrets).map(name => [name, REDACTED]));
	if (body.sensitive?.length && body.payload !== undefined) {
		copy.payload = structuredClone(body.payload);
		for (const path of body.sensitive) {
			const at = locate(copy.payload, path);
			if (at) at.parent[at.key] = REDACTED;
		}
	}
	return copy;
}
