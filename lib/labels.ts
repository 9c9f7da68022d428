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
	if (Array.isArray(selector)) return selector.every(key => Object.hasOwn(terminal, key));
	return Object.entries(selector).every(([key, value]) => labelIs(terminal, key, String(value)));
}

/**
 * Whether `labels` has `key` with `value`, as its own field: `constructor`, `__proto__` or
 * `toString` is a label only where a terminal was given one, never through Object.prototype.
 */
export function labelIs(labels: Labels, key: string, value: string): boolean {
	return Object.hasOwn(labels, key) && labels[key] === value;
}

/** `label` as a list filters by it: `key` (any value) or `key=value`; own labels only. */
export function hasLabel(labels: Labels, label: string): boolean {
	const at = label.indexOf("=");
	if (at < 0) return Object.hasOwn(labels, label);
	return labelIs(labels, label.slice(0, at), label.slice(at + 1));
}
