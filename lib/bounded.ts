/**
 * Limits on the shape of untrusted JSON values, checked without recursion, so that no input can
 * exhaust the stack of a validator, a redactor, a size measure or a logger that walks it later.
 */

/** Nesting allowed in any body or message: far beyond what a real task needs, far below the stack's limit. */
export const MAX_JSON_DEPTH = 64;

export interface ShapeProblem {
	/** Dotted path of the first value past the limit, as the caller wrote it ("" for the root). */
	field: string;
	depth: number;
}

/**
 * The first place where `value` nests deeper than `maxDepth` (objects and arrays count one level
 * each), or null when it fits. Iterative: safe on any depth a parser could produce.
 */
export function tooDeep(value: unknown, maxDepth = MAX_JSON_DEPTH): ShapeProblem | null {
	const stack: { value: unknown; depth: number; path: string }[] = [{ value, depth: 0, path: "" }];
	while (stack.length > 0) {
		const item = stack.pop()!;
		if (item.value === null || typeof item.value !== "object") continue;
		const depth = item.depth + 1;
		if (depth > maxDepth) return { field: item.path, depth };
		const entries: [string, unknown][] = Array.isArray(item.value)
			? item.value.map((v, i) => [String(i), v])
			: Object.entries(item.value as Record<string, unknown>);
		for (const [key, child] of entries)
			if (child !== null && typeof child === "object")
				stack.push({ value: child, depth, path: item.path ? `${item.path}.${key}` : key });
	}
	return null;
}

/**
 * The path of the outermost field whose value nests past `maxDepth`, trimmed to the part a caller
 * recognises: "username", not "username.a.a.a…".
 */
export function deepField(value: unknown, maxDepth = MAX_JSON_DEPTH): string | null {
	const problem = tooDeep(value, maxDepth);
	if (!problem) return null;
	return problem.field.split(".")[0] ?? "";
}

/**
 * How deep a JSON text nests, read from the text itself (strings skipped), so that a body or a
 * message can be refused before the parser or anything after it sees an unbounded structure.
 */
export function textDepth(text: string): number {
	let depth = 0;
	let max = 0;
	let inString = false;
	for (let i = 0; i < text.length; i++) {
		const c = text.charCodeAt(i);
		if (inString) {
			if (c === 92 /* \ */) i++;
			else if (c === 34 /* " */) inString = false;
		} else if (c === 34) inString = true;
		else if (c === 123 /* { */ || c === 91 /* [ */) {
			depth++;
			if (depth > max) max = depth;
		} else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
	}
	return max;
}

/** Most path segments a depth error names: enough to point at the field, never a message as deep as the value. */
const MAX_PATH_SEGMENTS = 8;

/**
 * The field a caller would name for the first value nested past `maxDepth`: the path is followed
 * from the root while the value still branches, and stops where a single-key (or single-item)
 * chain begins, which is the shape of a value nested only to be deep. `{ selector: { labels:
 * {a:{a:…}}, strategy } }` gives "selector.labels"; array items read as `tasks[0].payload`. Null
 * when the value fits.
 */
export function deepPath(value: unknown, maxDepth = MAX_JSON_DEPTH): string | null {
	const problem = tooDeep(value, maxDepth);
	if (!problem) return null;
	if (problem.field === "") return "";
	const segments = problem.field.split(".");
	let node: unknown = value;
	let path = "";
	for (let i = 0; i < segments.length && i < MAX_PATH_SEGMENTS; i++) {
		const key = segments[i]!;
		const isIndex = Array.isArray(node);
		path = isIndex ? `${path}[${key}]` : path ? `${path}.${key}` : key;
		node = (node as Record<string, unknown>)[key];
		if (node === null || typeof node !== "object") break;
		const children = Array.isArray(node) ? node.length : Object.keys(node).length;
		if (children <= 1) break;
	}
	return path;
}

/** Keys that change an object's prototype when assigned, at any depth of a body. */
const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(["__proto__"]);
/** Keys that shadow Object.prototype where a body is merged into the action's params (its top level). */
const MERGE_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

/**
 * The path of the first key that could reach a prototype once the value is merged or copied
 * (`__proto__` anywhere; `constructor` and `prototype` at the top level, where a body is merged
 * into params) or break its conversion to text (`toString`, `valueOf`, outside `payload` and
 * `output`), or null. Iterative, like tooDeep; run it on values already bounded in depth.
 */
export function prototypeKey(value: unknown): string | null {
	const stack: { value: unknown; path: string; top: boolean; opaque: boolean }[] = [
		{ value, path: "", top: true, opaque: false }
	];
	while (stack.length > 0) {
		const item = stack.pop()!;
		if (item.value === null || typeof item.value !== "object") continue;
		const isArray = Array.isArray(item.value);
		for (const key of Object.keys(item.value)) {
			const path = isArray ? `${item.path}[${key}]` : item.path ? `${item.path}.${key}` : key;
			if (!isArray && (item.top ? MERGE_KEYS : PROTOTYPE_KEYS).has(key)) return path;
			if (!isArray && !item.opaque && CONVERSION_KEYS.has(key)) return path;
			const child = (item.value as Record<string, unknown>)[key];
			const opaque = item.opaque || (!isArray && OPAQUE_KEYS.has(key));
			if (child !== null && typeof child === "object") stack.push({ value: child, path, top: false, opaque });
		}
	}
	return null;
}

/**
 * Keys that make an object unconvertible to text (`String(value)` throws when `toString` is not a
 * function): a validator that quotes the value it refused would fail with a 500. Refused outside
 * `payload` and `output`, which no validator reads.
 */
const CONVERSION_KEYS: ReadonlySet<string> = new Set(["toString", "valueOf"]);

/** Fields whose value is the caller's own data, carried as JSON and never read as text: a NUL there is data. */
const OPAQUE_KEYS: ReadonlySet<string> = new Set(["payload", "output"]);

/**
 * The path of the first key or string holding a NUL character (`\u0000`), or null. A NUL has no
 * business in a name, an id or a filter (C strings and some drivers end text there), so it is
 * refused before any validator or SQL sees it; inside `payload` and `output`, which are stored
 * as JSON text (where a NUL is the escape `\u0000`), it is left alone. Iterative, like tooDeep.
 */
export function nulField(value: unknown): string | null {
	if (typeof value === "string") return value.includes("\u0000") ? "" : null;
	const stack: { value: unknown; path: string }[] = [{ value, path: "" }];
	while (stack.length > 0) {
		const item = stack.pop()!;
		if (item.value === null || typeof item.value !== "object") continue;
		const isArray = Array.isArray(item.value);
		for (const key of Object.keys(item.value)) {
			const path = isArray ? `${item.path}[${key}]` : item.path ? `${item.path}.${key}` : key;
			if (!isArray && key.includes("\u0000")) return path.split("\u0000").join("\\u0000");
			if (!isArray && OPAQUE_KEYS.has(key)) continue;
			const child = (item.value as Record<string, unknown>)[key];
			if (typeof child === "string") {
				if (child.includes("\u0000")) return path;
			} else if (child !== null && typeof child === "object") stack.push({ value: child, path });
		}
	}
	return null;
}
