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
