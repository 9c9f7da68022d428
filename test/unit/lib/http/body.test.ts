/**
 * The REST body parser on its own, over a stream that stands in for a request: what it accepts,
 * what it refuses and with which error, and the depth and prototype checks it is built on.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import type { IncomingMessage } from "node:http";
import { readJsonBody } from "../../../../lib/http/body.ts";
import { deepPath, prototypeKey } from "../../../../lib/bounded.ts";

function request(body: string, headers: Record<string, string> = { "content-type": "application/json" }): IncomingMessage {
	const chunks = body ? [Buffer.from(body)] : [];
	return Object.assign(Readable.from(chunks), { headers }) as unknown as IncomingMessage;
}

async function refusal(promise: Promise<unknown>): Promise<{ code: number; type: string; message: string }> {
	try {
		await promise;
	} catch (err) {
		return err as { code: number; type: string; message: string };
	}
	assert.fail("expected a refusal");
}

describe("JSON request bodies", () => {
	it("parse an object, and read no body as {}", async () => {
		assert.deepEqual(await readJsonBody(request('{"a":[1,{"b":null}]}')), { a: [1, { b: null }] });
		assert.deepEqual(await readJsonBody(request("", {})), {});
		assert.deepEqual(await readJsonBody(request("", { "content-type": "text/plain" })), {});
	});

	it("refuse other media types, charsets and encodings with 415", async () => {
		const cases: Record<string, string>[] = [
			{},
			{ "content-type": "text/plain" },
			{ "content-type": "application/json; charset=utf-16" },
			{ "content-type": "application/json", "content-encoding": "gzip" }
		];
		for (const headers of cases) {
			const err = await refusal(readJsonBody(request("{}", headers)));
			assert.equal(err.code, 415, JSON.stringify(headers));
			assert.equal(err.type, "UNSUPPORTED_MEDIA_TYPE");
		}
	});

	it("refuse a body over the limit, counted or declared, with 413", async () => {
		const counted = await refusal(readJsonBody(request(`{"a":"${"x".repeat(100)}"}`), { limit: 50 }));
		assert.deepEqual([counted.code, counted.type], [413, "PAYLOAD_TOO_LARGE"]);
		const declared = await refusal(
			readJsonBody(request("{}", { "content-type": "application/json", "content-length": "51" }), { limit: 50 })
		);
		assert.equal(declared.code, 413);
	});

	it("refuse text that is not JSON, and JSON that is not an object, with 400", async () => {
		for (const text of ["{", "[1]", "3", '"s"', "null"]) {
			const err = await refusal(readJsonBody(request(text)));
			assert.deepEqual([err.code, err.type], [400, "BAD_REQUEST"], text);
		}
	});

	it("refuse nesting past the limit with 422 naming the field", async () => {
		const err = await refusal(readJsonBody(request('{"x":1,"deep":[[[[1]]]]}'), { maxDepth: 3 }));
		assert.deepEqual([err.code, err.type, err.message], [422, "VALIDATION_ERROR", "'deep' nests deeper than 3 levels"]);
		// Inside strings, brackets are text.
		assert.deepEqual(await readJsonBody(request('{"s":"[[[[{{{{"}'), { maxDepth: 2 }), { s: "[[[[{{{{" });
	});

	it("refuse a key aimed at a prototype with 422 naming it", async () => {
		const err = await refusal(readJsonBody(request('{"a":{"__proto__":{"x":1}}}')));
		assert.deepEqual([err.code, err.message], [422, "'a.__proto__' is not an allowed key"]);
	});
});

describe("the caller's field of a value too deep", () => {
	const deep = (levels: number): unknown => JSON.parse('{"a":'.repeat(levels) + "1" + "}".repeat(levels));

	it("follows the path while the value branches", () => {
		assert.equal(deepPath({ username: deep(10), password: "p" }, 5), "username");
		assert.equal(deepPath({ type: "t", selector: { labels: deep(10), strategy: "random" } }, 5), "selector.labels");
		assert.equal(deepPath({ tasks: [{ type: "t" }, { type: "t", payload: deep(10) }] }, 5), "tasks[1].payload");
		assert.equal(deepPath({ fine: deep(2) }, 5), null);
	});

	it("names at most a few segments, whatever the value's shape", () => {
		let branching: Record<string, unknown> = { end: 1 };
		for (let i = 0; i < 100; i++) branching = { a: branching, b: 1 };
		assert.equal(deepPath(branching, 10)?.split(".").length, 8);
	});
});

describe("keys aimed at a prototype", () => {
	it("are __proto__ anywhere, constructor and prototype at the top", () => {
		assert.equal(prototypeKey(JSON.parse('{"__proto__":1}')), "__proto__");
		assert.equal(prototypeKey(JSON.parse('{"a":[{"b":{"__proto__":{}}}]}')), "a[0].b.__proto__");
		assert.equal(prototypeKey({ constructor: 1 }), "constructor");
		assert.equal(prototypeKey({ payload: { constructor: "x", prototype: 1 } }), null);
		assert.equal(prototypeKey({ a: [1, 2, { b: "c" }] }), null);
	});
});
