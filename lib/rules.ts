/**
 * Number rules shared by every action's params. fastest-validator's `convert: true` turns
 * `true` into 1 and `[]` into 0, so a body's numbers are taken only as JSON numbers; a query
 * string or a path carries only text, so there a number is taken only as a plain decimal
 * string (`"25"`, `"-1"`), never `"1e308"`, `"0x10"` or `" 5"`. Every number is bounded.
 * A `custom` rule says in `json` what it takes as JSON Schema, for the OpenAPI description.
 */

interface Bounds {
	min: number;
	max: number;
	optional?: boolean;
}

/** A JSON integer from `min` to `max`. */
export function intRule({ min, max, optional }: Bounds) {
	return { type: "number", integer: true, min, max, ...(optional ? { optional: true } : {}) };
}

/** A finite JSON number from `min` to `max` (fractions allowed). */
export function numberRule({ min, max, optional }: Bounds) {
	return { type: "number", min, max, ...(optional ? { optional: true } : {}) };
}

/** A finite JSON number above 0, at most `max` (a duration, say). */
export function positiveRule(max: number, optional = true) {
	return { type: "number", positive: true, max, ...(optional ? { optional: true } : {}) };
}

const DECIMAL = /^-?\d{1,15}$/;

interface CheckError {
	type: string;
	expected?: unknown;
	actual?: unknown;
}

/**
 * An integer from a query string or a path (a decimal string, turned into a number) or from a
 * JSON body (a number): anything else — a boolean, an array, an exponent — is refused naming
 * the field.
 */
export function queryIntRule({ min, max, optional }: Bounds) {
	return {
		type: "custom",
		min,
		max,
		json: { type: "integer", minimum: min, maximum: max },
		...(optional ? { optional: true } : {}),
		check(value: unknown, errors: CheckError[]): unknown {
			const n = typeof value === "string" && DECIMAL.test(value) ? Number(value) : value;
			if (typeof n !== "number" || !Number.isInteger(n)) {
				errors.push({ type: "numberInteger", actual: typeof value === "string" ? value.slice(0, 32) : typeof value });
				return value;
			}
			if (n < min) errors.push({ type: "numberMin", expected: min, actual: n });
			if (n > max) errors.push({ type: "numberMax", expected: max, actual: n });
			return n;
		}
	};
}

/** `true`/`false` from a query string, or a JSON boolean; nothing else. */
export function queryBoolRule(optional = true) {
	return {
		type: "custom",
		json: { type: "boolean" },
		...(optional ? { optional: true } : {}),
		check(value: unknown, errors: CheckError[]): unknown {
			if (typeof value === "boolean") return value;
			if (value === "true") return true;
			if (value === "false") return false;
			errors.push({ type: "boolean", actual: typeof value === "string" ? value.slice(0, 32) : typeof value });
			return value;
		}
	};
}

/** The largest page number any list takes. */
export const MAX_PAGE = 1_000_000;
/** Largest exit code: what a 32-bit signed column holds. */
export const EXIT_CODE = { min: -2_147_483_648, max: 2_147_483_647 };
/** Largest attempt number: far past any retry policy (maxRetries ≤ 100, deliveries ≤ a few). */
export const MAX_ATTEMPT = 1_000_000;

/** ISO-8601 as JSON or a query gives it: a date-time string, at most 40 characters. */
const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * A point in time given as an ISO-8601 string, turned into a Date. fastest-validator's date
 * rule with `convert` takes `true`, `[]` or any number as a date; this one takes only the string.
 */
export function isoDateRule(optional = false) {
	return {
		type: "custom",
		json: { type: "string", maxLength: 40, pattern: ISO_DATE.source },
		...(optional ? { optional: true } : {}),
		check(value: unknown, errors: CheckError[]): unknown {
			const text = typeof value === "string" && value.length <= 40 && ISO_DATE.test(value) ? value : null;
			const date = text === null ? null : new Date(text);
			if (date === null || Number.isNaN(date.getTime())) {
				errors.push({ type: "date", actual: typeof value === "string" ? value.slice(0, 40) : typeof value });
				return value;
			}
			return date;
		}
	};
}
