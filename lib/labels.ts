import type { Labels } from "./contracts.ts";

/** `["gpu", "linux"]` → `{ gpu: "true", linux: "true" }`; a map is copied with string values. */
export function normalizeLabels(input: Labels | string[] | null | undefined): Labels {
	if (!input) return {};
	if (Array.isArray(input)) return Object.fromEntries(input.map(key => [key, "true"]));
	return Object.fromEntries(Object.entries(input).map(([key, value]) => [key, String(value)]));
}

/**
 * A terminal matches a selector when it carries every selector label. A selector given as a
 * list (`["gpu"]`) asks only that the key be present, whatever its value.
 */
export function labelsMatch(selector: Labels | string[] | null | undefined, terminal: Labels): boolean {
	if (!selector) return true;
	if (Array.isArray(selector)) return selector.every(key => key in terminal);
	return Object.entries(selector).every(([key, value]) => terminal[key] === String(value));
}
