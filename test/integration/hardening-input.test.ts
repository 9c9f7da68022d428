/**
 * Hostile values in well-formed requests: numbers given as booleans, arrays or 1e308; unknown
 * fields on a terminal's replies and on the batch envelope; NUL characters in names, filters and
 * ids; ids 10,000 characters long; label filters and selectors aimed at Object.prototype. Each
 * must get a 4xx naming the caller's field and change nothing, and none a 5xx.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestTern, type ApiReply } from "../helpers/tern.ts";

const LONG = "x".repeat(10_000);

describe("REST input hardening", () => {
	let tern: TestTern;
	let terminalToken: string;
	let taskId: string;

	before(async () => {
		tern = await TestTern.start();
		terminalToken = await tern.registerTerminal("hi-term", { labels: { zone: "a" } });
		// A task delivered to the terminal through pull, so that ack/progress/result have a target.
		taskId = await tern.submit({ terminalId: "hi-term", type: "t" });
		const pulled = await tern.api("GET", "/api/task/pull?terminalId=hi-term", undefined, terminalToken);
		assert.equal(pulled.body.tasks.length, 1, JSON.stringify(pulled.body));
	});
	after(() => tern.close());

	async function counts(): Promise<string> {
		const tasks = (await tern.api("GET", "/api/tasks?pageSize=1")).body.total;
		const jobs = (await tern.api("GET", "/api/jobs?pageSize=1")).body.total;
		const terminals = (await tern.api("GET", "/api/terminals")).body.length;
		return JSON.stringify({ tasks, jobs, terminals, task: (await tern.query(taskId)).status });
	}

	/** A 4xx (422 unless said) that names `field`, in its message or its items. */
	function assertNames(reply: ApiReply, field: string, what: string, status = 422): void {
		assert.equal(reply.status, status, `${what}: ${reply.status} ${JSON.stringify(reply.body)}`);
		const text = JSON.stringify(reply.body);
		assert.ok(text.includes(`'${field}'`) || text.includes(`"field":"${field}"`), `${what} names '${field}': ${text}`);
		assert.doesNotMatch(text, /"nodeID"|"action"|dispatcher\.|scheduler\./, `${what}: ${text}`);
	}

	it("takes numbers only as numbers: booleans, arrays, strings and 1e308 are refused, naming the field", async () => {
		const before = await counts();
		const submit = { terminalId: "hi-term", type: "t" };
		for (const [field, value] of [
			["priority", []],
			["priority", true],
			["priority", "5"],
			["timeout", true],
			["timeout", 1e308],
			["ackTimeout", [3]],
			["ttl", false],
			["maxRetries", true],
			["maxRetries", 1e308]
		] as const)
			assertNames(
				await tern.api("POST", "/api/task/submit", { ...submit, [field]: value }),
				field,
				`${field}: ${JSON.stringify(value)}`
			);
		assertNames(
			await tern.api("POST", "/api/task/submit", { ...submit, backoff: { type: "fixed", delay: true } }),
			"backoff.delay",
			"delay"
		);

		const reply = { taskId, attempt: 1 };
		for (const [path, body, field] of [
			["/api/task/ack", { taskId, attempt: true }, "attempt"],
			["/api/task/ack", { taskId, attempt: [1] }, "attempt"],
			["/api/task/ack", { taskId, attempt: 1e308 }, "attempt"],
			["/api/task/progress", { ...reply, percent: true }, "percent"],
			["/api/task/result", { ...reply, status: "success", exitCode: 1e308 }, "exitCode"],
			["/api/task/result", { ...reply, status: "success", exitCode: true }, "exitCode"]
		] as const)
			assertNames(await tern.api("POST", path, body, terminalToken), field, `${path} ${JSON.stringify(body)}`);

		const job = { name: "j", schedule: { every: 1e308 }, task: submit };
		assertNames(await tern.api("POST", "/api/jobs", job), "schedule.every", "every 1e308");
		assertNames(await tern.api("POST", "/api/jobs", { ...job, schedule: { every: true } }), "schedule.every", "every true");
		assertNames(
			await tern.api("POST", "/api/jobs", { ...job, schedule: { every: 60_000 }, enabled: 1 }),
			"enabled",
			"enabled 1"
		);
		assert.equal(await counts(), before, "nothing changed");
	});

	it("takes numbers in a query string only as plain decimals, and bounds them", async () => {
		for (const query of [
			"page=1e308",
			"page=true",
			"page[]=1",
			"page=0x10",
			"pageSize=100000",
			"pageSize=1.5",
			"page=99999999999"
		])
			for (const path of ["/api/tasks", "/api/jobs", "/api/alerts"]) {
				const field = query.split(/[=[]/)[0]!;
				assertNames(await tern.api("GET", `${path}?${query}`), field, `${path}?${query}`);
			}
		assertNames(await tern.api("GET", `/api/tasks/${taskId}/logs?limit=true`), "limit", "logs limit");
		assertNames(await tern.api("GET", "/api/task/pull?limit=1e3", undefined, terminalToken), "limit", "pull limit");
		assertNames(await tern.api("GET", "/api/scripts/s/versions/1e3"), "version", "script version");
		assert.equal((await tern.api("GET", "/api/tasks?page=1&pageSize=500")).status, 200);
		assert.equal((await tern.api("GET", "/api/jobs?enabled=true")).status, 200);
	});

	it("refuses unknown fields on ack, progress, result and the batch envelope", async () => {
		const before = await counts();
		for (const path of ["/api/task/ack", "/api/task/progress", "/api/task/result"])
			assertNames(
				await tern.api("POST", path, { taskId, attempt: 1, status: "success", extra: 1 }, terminalToken),
				"extra",
				path
			);
		assertNames(
			await tern.api("POST", "/api/tasks/batch", { tasks: [{ terminalId: "hi-term", type: "t" }], atomic: true }),
			"atomic",
			"batch"
		);
		assert.equal(await counts(), before);
	});

	it("refuses a NUL character in names, filters, ids and paths, naming the field; a payload may hold one", async () => {
		const before = await counts();
		assertNames(
			await tern.api("POST", "/api/auth/login", { username: "ad\u0000min", password: "x" }, null),
			"username",
			"login"
		);
		assertNames(await tern.api("POST", "/api/task/submit", { terminalId: "hi-term", type: "t\u0000" }), "type", "type");
		const key = await tern.api("POST", "/api/task/submit", {
			terminalId: "hi-term",
			type: "t",
			selector: { labels: { "a\u0000": "b" } }
		});
		assert.equal(key.status, 422);
		assert.match(key.body.message, /^'selector\.labels\.a\\u0000' must not contain a NUL/);
		assertNames(await tern.api("GET", "/api/tasks?terminalId=hi%00term"), "terminalId", "query");
		assertNames(await tern.api("GET", "/api/terminals?label=zone%00"), "label", "label query");
		assertNames(await tern.api("GET", "/api/tasks/abc%00def"), "id", "path");
		assertNames(await tern.api("GET", "/api/jobs?search=%00"), "search", "search");
		assert.equal(await counts(), before);
		const withNul = await tern.api("POST", "/api/task/submit", {
			terminalId: "hi-term",
			type: "t",
			payload: { text: "a\u0000b" }
		});
		assert.equal(withNul.status, 201, JSON.stringify(withNul.body));
	});

	it("refuses 10,000-character ids with 422 naming the field", async () => {
		const before = await counts();
		for (const [method, path, field] of [
			["GET", `/api/tasks/${LONG}`, "id"],
			["POST", `/api/tasks/${LONG}/cancel`, "id"],
			["GET", `/api/tasks/${LONG}/logs`, "id"],
			["GET", `/api/task/query?taskId=${LONG}`, "taskId"],
			["GET", `/api/terminals/${LONG}`, "id"],
			["POST", `/api/terminals/${LONG}/disable`, "id"],
			["GET", `/api/jobs/${LONG}`, "id"],
			["DELETE", `/api/jobs/${LONG}`, "id"],
			["GET", `/api/scripts/${LONG}`, "name"],
			["GET", `/api/tasks?groupId=${LONG}`, "groupId"]
		] as const)
			assertNames(await tern.api(method, path), field, `${method} ${path.slice(0, 30)}…`);
		assertNames(await tern.api("POST", "/api/task/submit", { terminalId: LONG, type: "t" }), "terminalId", "submit");
		assertNames(await tern.api("POST", "/api/terminals", { id: LONG }), "id", "register");
		assert.equal(await counts(), before);
	});

	it('matches no terminal through Object.prototype: ?label=constructor, __proto__, toString; a selector ["constructor"] reaches none', async () => {
		for (const label of [
			"constructor",
			"__proto__",
			"toString",
			"hasOwnProperty",
			"constructor=function Object() { [native code] }"
		]) {
			const reply = await tern.api("GET", `/api/terminals?label=${encodeURIComponent(label)}`);
			assert.equal(reply.status, 200, JSON.stringify(reply.body));
			assert.deepEqual(reply.body, [], label);
		}
		assert.equal((await tern.api("GET", "/api/terminals?label=zone")).body.length, 1);
		const before = await counts();
		for (const labels of [
			["constructor"],
			["__proto__"],
			["toString"],
			{ constructor: "x" },
			{ toString: "function toString() { [native code] }" }
		])
			for (const strategy of ["broadcast", "round_robin", "sharding"]) {
				const reply = await tern.api("POST", "/api/task/submit", { type: "t", selector: { labels, strategy } });
				assert.ok(
					reply.status === 422 || reply.status === 400,
					`${JSON.stringify(labels)} ${strategy}: ${reply.status} ${JSON.stringify(reply.body)}`
				);
			}
		assert.equal(await counts(), before, "no task was created");
	});

	it("refuses a body that is not an object on every kind of route", async () => {
		for (const body of ["[]", '"text"', "null", "42", "true", "[{}]"])
			for (const [method, path] of [
				["POST", "/api/task/submit"],
				["POST", "/api/tasks/batch"],
				["POST", "/api/jobs"],
				["PUT", "/api/jobs/x"],
				["PATCH", "/api/terminals/hi-term"],
				["POST", "/api/auth/login"]
			] as const) {
				const reply = await tern.api(method, path, body);
				assert.equal(reply.status, 400, `${method} ${path} ${body}: ${reply.status} ${JSON.stringify(reply.body)}`);
				assert.match(reply.body.message, /must be a JSON object/);
			}
	});
});
