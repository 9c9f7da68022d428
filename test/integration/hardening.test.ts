/**
 * Hostile input on the REST side, against a real Tern: a body nested ten thousand levels deep,
 * a body in another media type, one past the size limit, keys aimed at prototypes, malformed
 * percent-encoding. Each must get a 4xx that names what was wrong, in the caller's words, and
 * the server must go on answering: it runs in this process, so a crash would end the test run.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestTern, type ApiReply } from "../helpers/tern.ts";
import { MAX_JSON_DEPTH } from "../../lib/bounded.ts";

/** `{"a":{"a":…1…}}`, `levels` objects deep, as text: a value too deep to build and stringify safely. */
function nested(levels: number): string {
	return '{"a":'.repeat(levels) + "1" + "}".repeat(levels);
}

function assertError(reply: ApiReply, status: number, type: string, message?: RegExp): void {
	assert.equal(reply.status, status, `expected ${status} ${type}, got ${reply.status} ${JSON.stringify(reply.body)}`);
	assert.equal(reply.body?.type, type, `expected type ${type}, got ${JSON.stringify(reply.body)}`);
	assert.equal(reply.body.code, status);
	if (message) assert.match(reply.body.message, message);
}

/** No error data a caller receives names a node or an action. */
function assertNoInternals(reply: ApiReply): void {
	const text = JSON.stringify(reply.body);
	assert.doesNotMatch(text, /"nodeID"|"action"/, text);
}

describe("REST hardening", () => {
	let tern: TestTern;
	let terminalToken: string;

	before(async () => {
		tern = await TestTern.start();
		terminalToken = await tern.registerTerminal("hard-term", { labels: { zone: "a" } });
	});
	after(() => tern.close());

	/** A raw request: the text as given, with only the headers given (fetch adds none for a Uint8Array). */
	async function send(method: string, path: string, body: string | Uint8Array | undefined, headers: Record<string, string>) {
		const res = await fetch(tern.url + path, { method, body, headers });
		const text = await res.text();
		let parsed: any = text;
		try {
			parsed = text ? JSON.parse(text) : null;
		} catch {
			/* kept as text: the assertion shows it */
		}
		return { status: res.status, body: parsed, headers: res.headers } as ApiReply;
	}

	const json = (token: string | null = null): Record<string, string> => ({
		"content-type": "application/json",
		...(token ? { authorization: `Bearer ${token}` } : {})
	});

	async function taskTotal(): Promise<number> {
		return (await tern.api<{ total: number }>("GET", "/api/tasks?pageSize=1")).body.total;
	}

	async function stillAnswers(): Promise<void> {
		const reply = await tern.api("GET", "/api/tasks?pageSize=1");
		assert.equal(reply.status, 200, "the server still answers");
	}

	describe("nesting", () => {
		it("answers a 60 KB login whose username nests 10,000 deep with 422 naming username, and keeps running", async () => {
			const body = `{"username":${nested(10_000)},"password":"x"}`;
			assert.ok(body.length > 55_000 && body.length < 65_000);
			const reply = await send("POST", "/api/auth/login", body, json());
			assertError(reply, 422, "VALIDATION_ERROR", /'username' nests deeper than 64 levels/);
			assert.equal(reply.body.data[0].field, "username");
			await stillAnswers();
		});

		it("refuses a 10,000-deep value in the typed fields of every route with a body, naming the caller's field", async () => {
			const deep = nested(10_000);
			const admin = tern.adminToken;
			const cases: [method: string, path: string, body: string, token: string | null, field: string][] = [
				["POST", "/api/auth/login", `{"username":${deep},"password":"p"}`, null, "username"],
				["POST", "/api/task/submit", `{"terminalId":"hard-term","type":"t","payload":${deep}}`, admin, "payload"],
				["POST", "/api/task/submit", `{"terminalId":"hard-term","type":${deep}}`, admin, "type"],
				[
					"POST",
					"/api/task/submit",
					`{"type":"t","selector":{"labels":${deep},"strategy":"random"}}`,
					admin,
					"selector.labels"
				],
				["POST", "/api/tasks/batch", `{"tasks":[${deep}]}`, admin, "tasks"],
				[
					"POST",
					"/api/jobs",
					`{"name":"deep","schedule":{"every":60000},"task":{"terminalId":"hard-term","type":"t","payload":${deep}}}`,
					admin,
					"task.payload"
				],
				[
					"POST",
					"/api/jobs",
					`{"name":"deep","schedule":${deep},"task":{"terminalId":"hard-term","type":"t"}}`,
					admin,
					"schedule"
				],
				["PUT", "/api/jobs/no-such-job", `{"name":${deep}}`, admin, "name"],
				["POST", "/api/terminals", `{"id":"deep-term","labels":${deep}}`, admin, "labels"],
				["POST", "/api/users", `{"username":"deep","password":"long-enough","role":${deep}}`, admin, "role"],
				[
					"POST",
					"/api/task/result",
					`{"taskId":"t-none","attempt":1,"status":"success","output":${deep}}`,
					terminalToken,
					"output"
				],
				["POST", "/api/tasks/none/cancel", `{"reason":${deep}}`, admin, "reason"]
			];
			const before = await taskTotal();
			for (const [method, path, body, token, field] of cases) {
				const reply = await send(method, path, body, json(token));
				assertError(reply, 422, "VALIDATION_ERROR");
				assert.equal(reply.body.message, `'${field}' nests deeper than ${MAX_JSON_DEPTH} levels`, `${method} ${path}`);
				assertNoInternals(reply);
			}
			assert.equal(await taskTotal(), before, "no task was created");
			assert.equal((await tern.api("GET", "/api/terminals/deep-term")).status, 404, "no terminal was registered");
			await stillAnswers();
		});

		it("accepts a payload nested to the limit and refuses one level more", async () => {
			// The body object is one level, so the payload may nest one less than the limit.
			const fits = `{"terminalId":"hard-term","type":"t","payload":${nested(MAX_JSON_DEPTH - 1)}}`;
			const ok = await send("POST", "/api/task/submit", fits, json(tern.adminToken));
			assert.equal(ok.status, 201, JSON.stringify(ok.body));
			const over = `{"terminalId":"hard-term","type":"t","payload":${nested(MAX_JSON_DEPTH)}}`;
			assertError(
				await send("POST", "/api/task/submit", over, json(tern.adminToken)),
				422,
				"VALIDATION_ERROR",
				/'payload'/
			);
		});

		it("refuses a body that is itself nested too deep, or not an object at all", async () => {
			const deepArray = "[".repeat(100_000) + "]".repeat(100_000);
			assertError(
				await send("POST", "/api/task/submit", deepArray, json(tern.adminToken)),
				400,
				"BAD_REQUEST",
				/JSON object/
			);
			const cut = "[".repeat(100_000);
			assertError(
				await send("POST", "/api/task/submit", cut, json(tern.adminToken)),
				422,
				"VALIDATION_ERROR",
				/The body nests/
			);
			assertError(
				await send("POST", "/api/task/submit", '"a string"', json(tern.adminToken)),
				400,
				"BAD_REQUEST",
				/JSON object/
			);
			await stillAnswers();
		});

		it("never echoes a refused structure back, and names no node or action", async () => {
			// Within the depth limit, so the validator sees it: a 40-deep object where a string belongs.
			const reply = await send("POST", "/api/auth/login", `{"username":${nested(40)},"password":"p"}`, json());
			assertError(reply, 422, "VALIDATION_ERROR", /'username' field must be a string/);
			assert.deepEqual(Object.keys(reply.body.data[0]).sort(), ["field", "message", "type"]);
			assertNoInternals(reply);

			const priority = await tern.api("POST", "/api/task/submit", { terminalId: "hard-term", type: "t", priority: 10 });
			assertError(priority, 422, "VALIDATION_ERROR", /'priority' field/);
			assert.equal(priority.body.data[0].field, "priority");
			assert.equal(priority.body.data[0].actual, 10, "a plain value is still shown");
			assertNoInternals(priority);
		});

		it("bounds a query string's nesting the way it bounds a body's", async () => {
			const keys = Array.from({ length: 200 }, (_, i) => `[k${i}]`).join("");
			const reply = await tern.api("GET", `/api/tasks?status${keys}=x`);
			assertError(reply, 422, "VALIDATION_ERROR", /'status'/);
			assertNoInternals(reply);
			await stillAnswers();
		});
	});

	describe("media type", () => {
		it("refuses a body that is not sent as application/json with 415 naming its content type", async () => {
			const before = await taskTotal();
			const body = JSON.stringify({ terminalId: "hard-term", type: "t" });
			const auth = { authorization: `Bearer ${tern.adminToken}` };
			const plain = await send("POST", "/api/task/submit", body, { ...auth, "content-type": "text/plain" });
			assertError(plain, 415, "UNSUPPORTED_MEDIA_TYPE", /'text\/plain'/);
			assert.equal(plain.body.data.contentType, "text/plain");
			const form = await send("POST", "/api/task/submit", "terminalId=hard-term&type=t", {
				...auth,
				"content-type": "application/x-www-form-urlencoded"
			});
			assertError(form, 415, "UNSUPPORTED_MEDIA_TYPE", /x-www-form-urlencoded/);
			const none = await send("POST", "/api/task/submit", new TextEncoder().encode(body), auth);
			assertError(none, 415, "UNSUPPORTED_MEDIA_TYPE", /application\/json/);
			assert.equal(none.body.data.contentType, null);
			const latin1 = await send("POST", "/api/task/submit", body, {
				...auth,
				"content-type": "application/json; charset=latin1"
			});
			assertError(latin1, 415, "UNSUPPORTED_MEDIA_TYPE", /latin1/);
			assert.equal(await taskTotal(), before, "no task was created");

			for (const [method, path, token] of [
				["POST", "/api/auth/login", null],
				["POST", "/api/jobs", tern.adminToken],
				["PUT", "/api/jobs/any", tern.adminToken],
				["POST", "/api/terminals", tern.adminToken],
				["POST", "/api/task/result", terminalToken]
			] as const) {
				const reply = await send(method, path, "{}", {
					"content-type": "text/plain",
					...(token ? { authorization: `Bearer ${token}` } : {})
				});
				assertError(reply, 415, "UNSUPPORTED_MEDIA_TYPE", /text\/plain/);
			}
		});

		it("takes JSON with a charset or a +json type, and an empty POST whatever it claims", async () => {
			const auth = { authorization: `Bearer ${tern.adminToken}` };
			const body = JSON.stringify({ terminalId: "hard-term", type: "t" });
			const withCharset = await send("POST", "/api/task/submit", body, {
				...auth,
				"content-type": "application/json; charset=UTF-8"
			});
			assert.equal(withCharset.status, 201, JSON.stringify(withCharset.body));
			const structured = await send("POST", "/api/task/submit", body, {
				...auth,
				"content-type": "application/vnd.tern+json"
			});
			assert.equal(structured.status, 201, JSON.stringify(structured.body));

			const bare = await send("POST", `/api/tasks/${withCharset.body.taskId}/cancel`, undefined, auth);
			assert.equal(bare.status, 200, JSON.stringify(bare.body));
			assert.equal(bare.body.status, "CANCELLED");
			const claimed = await send("POST", `/api/tasks/${structured.body.taskId}/cancel`, "", {
				...auth,
				"content-type": "text/plain"
			});
			assert.equal(claimed.status, 200, JSON.stringify(claimed.body));
		});
	});

	describe("size", () => {
		it("refuses a body over 2 MiB with 413 PAYLOAD_TOO_LARGE as JSON, and keeps running", async () => {
			const before = await taskTotal();
			const body = JSON.stringify({ terminalId: "hard-term", type: "t", payload: "x".repeat(2 * 1024 * 1024) });
			const reply = await send("POST", "/api/task/submit", body, json(tern.adminToken));
			assertError(reply, 413, "PAYLOAD_TOO_LARGE", /larger than 2 MiB/);
			assert.match(reply.headers.get("content-type") ?? "", /application\/json/);
			assert.equal(reply.body.data.limit, 2 * 1024 * 1024);
			// Unauthenticated, too: the limit holds before any token is read.
			assertError(await send("POST", "/api/auth/login", body, json()), 413, "PAYLOAD_TOO_LARGE");
			assert.equal(await taskTotal(), before);
			await stillAnswers();
		});
	});

	describe("keys", () => {
		it("refuses __proto__ in a body, at the top or nested, and pollutes nothing", async () => {
			const before = await taskTotal();
			const top = await send(
				"POST",
				"/api/task/submit",
				'{"terminalId":"hard-term","type":"t","__proto__":{"admin":true}}',
				json(tern.adminToken)
			);
			assertError(top, 422, "VALIDATION_ERROR", /'__proto__' is not an allowed key/);
			const nestedKey = await send(
				"POST",
				"/api/task/submit",
				'{"terminalId":"hard-term","type":"t","payload":{"x":[{"__proto__":{"admin":true}}]}}',
				json(tern.adminToken)
			);
			assertError(nestedKey, 422, "VALIDATION_ERROR", /'payload\.x\[0\]\.__proto__'/);
			const user = await send(
				"POST",
				"/api/users",
				'{"username":"proto-user","password":"long-enough","role":"viewer","__proto__":{"role":"admin"}}',
				json(tern.adminToken)
			);
			assertError(user, 422, "VALIDATION_ERROR", /__proto__/);
			assertError(
				await send(
					"POST",
					"/api/auth/login",
					'{"username":"admin","password":"p","constructor":{"prototype":{}}}',
					json()
				),
				422,
				"VALIDATION_ERROR",
				/'constructor'/
			);
			assert.equal(({} as Record<string, unknown>).admin, undefined, "Object.prototype is untouched");
			assert.equal(({} as Record<string, unknown>).role, undefined);
			assert.equal(await taskTotal(), before);
			const users = (await tern.api<{ username: string }[]>("GET", "/api/users")).body;
			assert.ok(!users.some(u => u.username === "proto-user"), "no user was created");
		});

		it("keeps a payload's own 'constructor' field as data", async () => {
			const reply = await tern.api("POST", "/api/task/submit", {
				terminalId: "hard-term",
				type: "t",
				payload: { constructor: "Tern Ltd", prototype: 1 }
			});
			assert.equal(reply.status, 201, JSON.stringify(reply.body));
			const view = await tern.api("GET", `/api/tasks/${reply.body.taskId}`);
			assert.deepEqual(view.body.payload, { constructor: "Tern Ltd", prototype: 1 });
		});

		it("ignores __proto__ in a query string", async () => {
			const reply = await tern.api("GET", "/api/tasks?pageSize=1&__proto__[admin]=1&constructor[prototype][admin]=1");
			assert.equal(reply.status, 200, JSON.stringify(reply.body));
			assert.equal(({} as Record<string, unknown>).admin, undefined);
		});

		it("refuses unknown keys where the validator is strict, naming them", async () => {
			const login = await tern.api("POST", "/api/auth/login", { username: "admin", password: "p", role: "admin" }, null);
			assertError(login, 422, "VALIDATION_ERROR", /Unknown field\(s\) 'role'/);
			assertNoInternals(login);
			const register = await tern.api("POST", "/api/terminals", { id: "strict-term", admin: true });
			assertError(register, 422, "VALIDATION_ERROR", /'admin'/);
		});
	});

	describe("percent-encoding", () => {
		it("answers malformed percent-encoding in a path or a query with 400 BAD_REQUEST", async () => {
			for (const [method, path] of [
				["GET", "/api/tasks/%E0%A4%A"],
				["POST", "/api/tasks/%E0%A4%A/cancel"],
				["GET", "/api/terminals/%ZZ"],
				["GET", "/api/tasks?terminalId=%E0%A4%A"],
				["GET", "/api/task/query?taskId=%ZZ"],
				["GET", "/api/tasks?%E0%A4%A=1"]
			] as const) {
				const reply = await tern.api(method, path);
				assertError(reply, 400, "BAD_REQUEST", /malformed percent-encoding/);
				assertNoInternals(reply);
			}
			// Before any token is read: a request without one gets the same answer.
			assertError(await tern.api("GET", "/api/tasks/%E0%A4%A", undefined, null), 400, "BAD_REQUEST");
			// Well-formed encoding still decodes.
			assertError(await tern.api("GET", "/api/tasks/%C3%A9t%C3%A9"), 404, "TASK_NOT_FOUND", /'été'/);
			await stillAnswers();
		});
	});
});
