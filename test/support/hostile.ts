/**
 * Hostile inputs for the fuzz tests, as fast-check arbitraries: oversized strings, SQL-ish text,
 * path traversal, prototype keys, NUL characters, numbers past every bound, deep and broken JSON.
 */
import fc from "fast-check";

export const FIELDS = [
	"taskId",
	"attempt",
	"terminalId",
	"type",
	"payload",
	"priority",
	"timeout",
	"ackTimeout",
	"ttl",
	"maxRetries",
	"backoff",
	"selector",
	"labels",
	"strategy",
	"key",
	"idempotencyKey",
	"waitForTerminal",
	"id",
	"name",
	"status",
	"output",
	"error",
	"exitCode",
	"percent",
	"log",
	"stream",
	"username",
	"password",
	"role",
	"before",
	"page",
	"pageSize",
	"label",
	"enabled",
	"tasks",
	"interpreter",
	"body",
	"schedule",
	"task",
	"config",
	"threshold",
	"matchers",
	"endsAt",
	"scope",
	"limit",
	"after",
	"sort",
	"search",
	"concurrency",
	"version"
];
export const HOSTILE_KEYS = [
	"__proto__",
	"constructor",
	"prototype",
	"toString",
	"hasOwnProperty",
	"a\u0000b",
	"",
	"x".repeat(300)
];

export const hostileString = fc.oneof(
	fc.constantFrom(
		"' OR 1=1 --",
		"1; DROP TABLE tasks; --",
		'" OR ""="',
		"%' OR '%'='",
		"../../../etc/passwd",
		"..\\..\\windows\\win.ini",
		"%2e%2e%2f%2e%2e%2f",
		"\u0000",
		"a\u0000b",
		"__proto__",
		"constructor",
		"toString",
		"${7*7}",
		"{{7*7}}",
		"<script>alert(1)</script>",
		"\uD800",
		"\u202e",
		"null",
		"true",
		"1e308",
		"-1",
		"NaN",
		"x".repeat(10_000),
		"é".repeat(3000)
	),
	fc.string({ maxLength: 40 }),
	fc.string({ unit: "binary", maxLength: 40 })
);

export const hostileNumber = fc.oneof(
	fc.constantFrom(1e308, -1e308, Number.MAX_SAFE_INTEGER, -0, 0.5, -1, 2 ** 31, 2 ** 53 + 1),
	fc.integer(),
	fc.double({ noNaN: true, noDefaultInfinity: true })
);

export const leaf = fc.oneof(hostileString, hostileNumber, fc.boolean(), fc.constant(null));

/** A JSON value of hostile leaves, nested a little, with field names Tern knows and keys it must refuse. */
export const hostileValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>(tie => ({
	value: fc.oneof(
		{ depthSize: "small", withCrossShrink: true },
		leaf,
		fc.array(tie("value"), { maxLength: 4 }),
		fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.constantFrom(...HOSTILE_KEYS)), tie("value"), { maxKeys: 5 })
	)
})).value;

/** A request body as text: an object of known fields with hostile values, or JSON that is not an object, deep, huge or broken. */
export const hostileBody = fc.oneof(
	{
		weight: 6,
		arbitrary: fc
			.dictionary(fc.constantFrom(...FIELDS, ...HOSTILE_KEYS), hostileValue, { maxKeys: 6 })
			.map(v => JSON.stringify(v))
	},
	{ weight: 1, arbitrary: fc.integer({ min: 65, max: 5000 }).map(n => '{"a":'.repeat(n) + "1" + "}".repeat(n)) },
	{ weight: 1, arbitrary: fc.integer({ min: 65, max: 5000 }).map(n => '{"payload":' + "[".repeat(n) + "]".repeat(n) + "}") },
	{
		weight: 1,
		arbitrary: fc.constantFrom("[]", "null", '"text"', "42", "{", '{"a":1,}', "\u0000", '{"__proto__":{"admin":true}}')
	},
	{
		weight: 1,
		arbitrary: fc.constant(JSON.stringify({ id: "x".repeat(10_000), name: "x".repeat(10_000), taskId: "x".repeat(10_000) }))
	}
);

/** Percent-encoding of any string: a lone surrogate (which encodeURIComponent refuses) becomes U+FFFD. */
export const enc = (text: string) =>
	encodeURIComponent(text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD"));

/** A path segment: hostile text, percent-encoded (or, now and then, raw and malformed). */
export const hostileSegment = fc.oneof(
	{ weight: 8, arbitrary: hostileString.filter(s => s.length > 0).map(s => enc(s)) },
	{ weight: 1, arbitrary: fc.constantFrom("%E0%A4%A", "%ZZ", "%00", "..%2f..", "%2e%2e") }
);

/** A query string: known and hostile keys, hostile values, arrays and nesting in qs's syntax. */
export const hostileQuery = fc
	.array(
		fc.tuple(
			fc.oneof(
				fc.constantFrom(...FIELDS),
				fc.constantFrom("__proto__[admin]", "constructor[prototype][x]", "page[]", "a[b][c][d][e][f][g]")
			),
			hostileString
		),
		{ maxLength: 4 }
	)
	.map(pairs => pairs.map(([k, v]) => `${encodeURI(k)}=${enc(v)}`).join("&"));
