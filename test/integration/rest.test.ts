/**
 * The REST surface against a real Tern: auth, users and roles, submit validation, task views
 * and lists, the HTTP pull fallback for terminals without a socket, and terminal management.
 * Every refusal is checked three ways: the status code, the error `type`, and that nothing
 * changed.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_PASSWORD, TestTern, waitFor, type ApiReply } from "../helpers/tern.ts";
import { confirmedCall, handMadeJwt } from "../support/tokens.ts";
import { kidOf } from "../../services/auth/keys.ts";
import type { TaskPush, TaskQueryView, TaskView, TerminalView } from "../../lib/contracts.ts";

/** Asserts an error reply: status, `type`, the `{ name, message, code, type }` shape, and optionally the message. */
function assertError(reply: ApiReply, status: number, type: string, message?: RegExp): void {
	assert.equal(reply.status, status, `expected ${status} ${type}, got ${reply.status} ${JSON.stringify(reply.body)}`);
	assert.equal(reply.body?.type, type, `expected type ${type}, got ${JSON.stringify(reply.body)}`);
	assert.equal(reply.body.code, status);
	assert.equal(typeof reply.body.name, "string");
	assert.equal(typeof reply.body.message, "string");
	if (message) assert.match(reply.body.message, message);
}

interface TaskPage {
	rows: TaskView[];
	total: number;
	page: number;
	pageSize: number;
	totalPages: number;
}

describe("REST API", () => {
	let tern: TestTern;

	before(async () => {
		tern = await TestTern.start();
	});
	after(() => tern.close());

	/** How many tasks exist at all. */
	async function taskTotal(): Promise<number> {
		const reply = await tern.api<TaskPage>("GET", "/api/tasks?pageSize=1");
		assert.equal(reply.status, 200);
		return reply.body.total;
	}

	async function login(username: string, password: string): Promise<string> {
		const reply = await tern.api<{ token: string }>("POST", "/api/auth/login", { username, password }, null);
		assert.equal(reply.status, 200, JSON.stringify(reply.body));
		return reply.body.token;
	}

	function serverSecret(): string {
		return readFileSync(join(tern.dataDir, "jwt-secret"), "utf8").trim();
	}

	// ------------------------------------------------------------------ auth

	describe("auth", () => {
		it("logs in with the right password and refuses a wrong one or an unknown user", async () => {
			const good = await tern.api("POST", "/api/auth/login", { username: "admin", password: ADMIN_PASSWORD }, null);
			assert.equal(good.status, 200);
			assert.equal(typeof good.body.token, "string");
			assert.equal(good.body.token.split(".").length, 3, "a JWT");
			assert.equal(good.body.role, "admin");
			// The token works.
			assert.equal((await tern.api("GET", "/api/tasks", undefined, good.body.token)).status, 200);

			const wrong = await tern.api("POST", "/api/auth/login", { username: "admin", password: "not-the-password" }, null);
			assertError(wrong, 401, "BAD_CREDENTIALS");
			assert.equal(wrong.body.token, undefined);

			const unknown = await tern.api(
				"POST",
				"/api/auth/login",
				{ username: "nobody-here", password: ADMIN_PASSWORD },
				null
			);
			assertError(unknown, 401, "BAD_CREDENTIALS");
			assert.equal(unknown.body.message, wrong.body.message, "an unknown user looks the same as a wrong password");

			const missing = await tern.api("POST", "/api/auth/login", { username: "admin" }, null);
			assertError(missing, 422, "VALIDATION_ERROR", /password/);
		});

		it("refuses a call without an Authorization header with UNAUTHORIZED", async () => {
			const before = await taskTotal();
			for (const [method, path, body] of [
				["GET", "/api/tasks", undefined],
				["GET", "/api/terminals", undefined],
				["POST", "/api/task/submit", { terminalId: "x", type: "t" }],
				["GET", "/api/users", undefined]
			] as const) {
				const reply = await tern.api(method, path, body, null);
				assertError(reply, 401, "UNAUTHORIZED", /Authorization/);
			}
			assert.equal(await taskTotal(), before);
		});

		it("refuses a forged token (right shape, wrong signature) with INVALID_TOKEN", async () => {
			// Everything right but the secret: the server's key id, its issuer and audience.
			const forged = await handMadeJwt({
				secret: "not-the-server-secret-not-the-server-secret",
				kid: kidOf(serverSecret()),
				claims: { kind: "user", role: "admin", uid: 1 }
			});
			const reply = await tern.api("GET", "/api/tasks", undefined, forged);
			assertError(reply, 401, "INVALID_TOKEN", /signature/);

			// The admin's real token with its signature swapped for another's.
			const [head, body] = tern.adminToken.split(".");
			const swapped = `${head}.${body}.${forged.split(".")[2]}`;
			assertError(await tern.api("GET", "/api/tasks", undefined, swapped), 401, "INVALID_TOKEN");

			assertError(await tern.api("GET", "/api/tasks", undefined, "not-a-jwt"), 401, "INVALID_TOKEN");

			const before = await taskTotal();
			const submit = await tern.api("POST", "/api/task/submit", { terminalId: "x", type: "t" }, forged);
			assertError(submit, 401, "INVALID_TOKEN");
			assert.equal(await taskTotal(), before);
		});

		it("refuses an expired user token with INVALID_TOKEN saying it expired", async () => {
			const secret = serverSecret();
			const now = Math.floor(Date.now() / 1000);
			const claims = { kind: "user", role: "admin", uid: 1 };
			// Control: a token signed the same way but still valid is accepted, so the secret is right.
			const fresh = await handMadeJwt({ secret, claims, iat: now, exp: now + 3600 });
			assert.equal((await tern.api("GET", "/api/tasks", undefined, fresh)).status, 200);

			const expired = await handMadeJwt({ secret, claims, iat: now - 7200, exp: now - 3600 });
			const reply = await tern.api("GET", "/api/tasks", undefined, expired);
			assertError(reply, 401, "INVALID_TOKEN", /expired/);
		});

		it("refuses an Authorization header that is not a bearer token", async () => {
			const res = await fetch(`${tern.url}/api/tasks`, { headers: { authorization: "Basic YWRtaW46YWRtaW4=" } });
			const body = (await res.json()) as { type: string; message: string };
			assert.equal(res.status, 401);
			assert.equal(body.type, "INVALID_TOKEN");
			assert.match(body.message, /Bearer/);
		});
	});

	// ------------------------------------------------------------------ users

	describe("users and roles", () => {
		let operatorToken: string;
		let viewerToken: string;
		let operatorId: number;
		let viewerId: number;

		async function usernames(): Promise<string[]> {
			const reply = await tern.api<{ username: string }[]>("GET", "/api/users");
			assert.equal(reply.status, 200);
			return reply.body.map(u => u.username).sort();
		}

		it("lets an admin create an operator and a viewer, and lists them", async () => {
			const op = await tern.api("POST", "/api/users", { username: "olga", password: "operator-pass-1", role: "operator" });
			assert.equal(op.status, 201, JSON.stringify(op.body));
			assert.equal(op.body.username, "olga");
			assert.equal(op.body.role, "operator");
			assert.equal(typeof op.body.id, "number");
			assert.equal(op.body.passwordHash, undefined, "no hash in the view");
			assert.equal(op.body.password, undefined);
			operatorId = op.body.id;

			const viewer = await tern.api("POST", "/api/users", {
				username: "victor",
				password: "viewer-pass-1",
				role: "viewer"
			});
			assert.equal(viewer.status, 201);
			assert.equal(viewer.body.role, "viewer");
			viewerId = viewer.body.id;

			const list = await tern.api<{ id: number; username: string; role: string }[]>("GET", "/api/users");
			assert.equal(list.status, 200);
			assert.ok(Array.isArray(list.body));
			assert.deepEqual(list.body.map(u => [u.username, u.role]).sort(), [
				["admin", "admin"],
				["olga", "operator"],
				["victor", "viewer"]
			]);
			for (const user of list.body) assert.equal((user as Record<string, unknown>).passwordHash, undefined);

			operatorToken = await login("olga", "operator-pass-1");
			viewerToken = await login("victor", "viewer-pass-1");
		});

		it("refuses a duplicate username with USER_EXISTS and an invalid user with VALIDATION_ERROR", async () => {
			const before = await usernames();
			const dup = await tern.api("POST", "/api/users", { username: "olga", password: "another-pass-1", role: "viewer" });
			assertError(dup, 409, "USER_EXISTS", /olga/);
			// The original's password and role still hold.
			assert.equal(
				(await tern.api("POST", "/api/auth/login", { username: "olga", password: "another-pass-1" }, null)).status,
				401
			);
			assert.equal(
				(await tern.api("POST", "/api/auth/login", { username: "olga", password: "operator-pass-1" }, null)).body.role,
				"operator"
			);

			assertError(
				await tern.api("POST", "/api/users", { username: "short", password: "x", role: "viewer" }),
				422,
				"VALIDATION_ERROR",
				/password/
			);
			assertError(
				await tern.api("POST", "/api/users", { username: "badrole", password: "long-enough-1", role: "root" }),
				422,
				"VALIDATION_ERROR",
				/'role'.*'root'/
			);
			assertError(
				await tern.api("POST", "/api/users", { username: "has space", password: "long-enough-1", role: "viewer" }),
				422,
				"VALIDATION_ERROR",
				/username/
			);
			assert.deepEqual(await usernames(), before);
		});

		it("lets a viewer read tasks but not submit", async () => {
			await tern.registerTerminal("users-term");
			const list = await tern.api("GET", "/api/tasks", undefined, viewerToken);
			assert.equal(list.status, 200);
			assert.equal(typeof list.body.total, "number");
			assert.equal((await tern.api("GET", "/api/terminals", undefined, viewerToken)).status, 200);

			const before = await taskTotal();
			const submit = await tern.api("POST", "/api/task/submit", { terminalId: "users-term", type: "t" }, viewerToken);
			assertError(submit, 403, "FORBIDDEN", /viewer/);
			assert.equal(await taskTotal(), before);

			const register = await tern.api("POST", "/api/terminals", { id: "viewer-made" }, viewerToken);
			assertError(register, 403, "FORBIDDEN");
			assertError(await tern.api("GET", "/api/terminals/viewer-made"), 404, "TERMINAL_NOT_FOUND");
		});

		it("lets an operator submit, and records who submitted", async () => {
			const before = await taskTotal();
			const submit = await tern.api("POST", "/api/task/submit", { terminalId: "users-term", type: "t" }, operatorToken);
			assert.equal(submit.status, 201, JSON.stringify(submit.body));
			assert.equal(typeof submit.body.taskId, "string");
			assert.equal(await taskTotal(), before + 1);
			const view = await tern.api("GET", `/api/tasks/${submit.body.taskId}`, undefined, operatorToken);
			assert.equal(view.status, 200);
			assert.equal(view.body.status, "PENDING");
		});

		it("refuses user management to non-admins", async () => {
			const before = await usernames();
			for (const token of [operatorToken, viewerToken]) {
				assertError(
					await tern.api(
						"POST",
						"/api/users",
						{ username: "mallory", password: "mallory-pass-1", role: "admin" },
						token
					),
					403,
					"FORBIDDEN"
				);
				assertError(await tern.api("GET", "/api/users", undefined, token), 403, "FORBIDDEN");
				assertError(await tern.api("DELETE", `/api/users/${viewerId}`, undefined, token), 403, "FORBIDDEN");
			}
			assert.deepEqual(await usernames(), before);
			assert.equal(
				(await tern.api("POST", "/api/auth/login", { username: "mallory", password: "mallory-pass-1" }, null)).status,
				401
			);
		});

		it("deletes a user; unknown ids are USER_NOT_FOUND", async () => {
			const removed = await confirmedCall(`${tern.url}/api/users/${viewerId}`, "DELETE", tern.adminToken);
			assert.equal(removed.status, 200, JSON.stringify(removed.body));
			assert.equal(removed.body.username, "victor");
			assert.deepEqual(await usernames(), ["admin", "olga"]);
			assertError(
				await tern.api("POST", "/api/auth/login", { username: "victor", password: "viewer-pass-1" }, null),
				401,
				"BAD_CREDENTIALS"
			);
			// Tokens issued before the deletion die with the user.
			assertError(await tern.api("GET", "/api/tasks", undefined, viewerToken), 401, "INVALID_TOKEN", /victor/);

			assertError(await tern.api("DELETE", `/api/users/${viewerId}`), 404, "USER_NOT_FOUND");
			assertError(await tern.api("DELETE", "/api/users/999999"), 404, "USER_NOT_FOUND");
			assertError(await tern.api("DELETE", "/api/users/abc"), 422, "VALIDATION_ERROR", /id/);
			assert.deepEqual(await usernames(), ["admin", "olga"]);
			assert.ok(operatorId > 0);
		});

		it("never deletes the last admin, but a second admin may go", async () => {
			const users = (await tern.api<{ id: number; username: string }[]>("GET", "/api/users")).body;
			const adminId = users.find(u => u.username === "admin")!.id;

			const last = await tern.api("DELETE", `/api/users/${adminId}`);
			assertError(last, 403, "FORBIDDEN", /last admin/);
			assert.ok((await usernames()).includes("admin"));
			assert.equal((await tern.api("GET", "/api/users")).status, 200, "the admin still works");

			const second = await tern.api("POST", "/api/users", { username: "alice", password: "admin-pass-22", role: "admin" });
			assert.equal(second.status, 201);
			const aliceToken = await login("alice", "admin-pass-22");
			assert.equal((await tern.api("GET", "/api/users", undefined, aliceToken)).status, 200);
			const removed = await confirmedCall(`${tern.url}/api/users/${second.body.id}`, "DELETE", tern.adminToken);
			assert.equal(removed.status, 200);
			assert.deepEqual(await usernames(), ["admin", "olga"]);
			// A removed admin's token no longer grants anything.
			const ghost = await tern.api(
				"POST",
				"/api/users",
				{ username: "ghost", password: "ghost-pass-1", role: "admin" },
				aliceToken
			);
			assertError(ghost, 401, "INVALID_TOKEN");
			assert.deepEqual(await usernames(), ["admin", "olga"]);
			assertError(await tern.api("DELETE", `/api/users/${adminId}`), 403, "FORBIDDEN", /last admin/);
		});
	});

	// ------------------------------------------------------------------ submit validation

	describe("batch submit", () => {
		it("takes in each task of a batch or refuses it on its own, in order", async () => {
			const token = await tern.registerTerminal("batch-a");
			const before = await taskTotal();
			const reply = await tern.api<{ results: ({ taskId: string } | { error: { type: string; message: string } })[] }>(
				"POST",
				"/api/tasks/batch",
				{
					tasks: [
						{ terminalId: "batch-a", type: "b", payload: { n: 1 } },
						{ terminalId: "no-such-terminal", type: "b" },
						{ terminalId: "batch-a", type: "b", payload: { n: 2 } },
						{ type: "b" },
						{ terminalId: "batch-a", type: "b", payload: { n: 3 } }
					]
				}
			);
			assert.equal(reply.status, 200, JSON.stringify(reply.body));
			const [first, unknown, second, neither, third] = reply.body.results;
			assert.ok("taskId" in first && "taskId" in second && "taskId" in third);
			assert.ok("error" in unknown && unknown.error.type === "TERMINAL_NOT_FOUND");
			assert.ok("error" in neither && neither.error.type === "VALIDATION_ERROR");
			assert.match(neither.error.message, /terminalId/);
			assert.equal(await taskTotal(), before + 3, "only the good tasks were created");

			// Queued while the terminal is away, then handed over in order, at most its concurrency at a time.
			const terminal = await tern.connectTerminal("batch-a", token, { concurrency: 2 });
			try {
				const got = [await terminal.nextTask(), await terminal.nextTask()];
				// The drain that pushed these two left the third queued: the server holds it, not the socket.
				assert.equal((await tern.query("taskId" in third ? third.taskId : "")).status, "PENDING");
				assert.equal(terminal.tasks.length, 2, "no more than its concurrency");
				assert.deepEqual(
					got.map(t => (t.payload as { n: number }).n),
					[1, 2]
				);
				for (const task of got) {
					await terminal.ack(task);
					await terminal.result(task);
				}
				const last = await terminal.nextTask();
				assert.equal((last.payload as { n: number }).n, 3);
				for (const id of [first, second].map(r => ("taskId" in r ? r.taskId : ""))) {
					const view = await tern.api<TaskQueryView>("GET", `/api/task/query?taskId=${id}`);
					assert.equal(view.body.status, "COMPLETED");
				}
			} finally {
				terminal.close();
			}
		});

		it("refuses a batch that is empty, too long or holds a malformed task, creating nothing", async () => {
			const before = await taskTotal();
			assertError(await tern.api("POST", "/api/tasks/batch", { tasks: [] }), 422, "VALIDATION_ERROR", /tasks/);
			assertError(
				await tern.api("POST", "/api/tasks/batch", {
					tasks: Array.from({ length: 1001 }, () => ({ terminalId: "batch-a", type: "b" }))
				}),
				422,
				"VALIDATION_ERROR",
				/tasks/
			);
			assertError(
				await tern.api("POST", "/api/tasks/batch", { tasks: [{ terminalId: "batch-a", type: "b", priorty: 1 }] }),
				422,
				"VALIDATION_ERROR",
				/priorty/
			);
			assert.equal(await taskTotal(), before);
		});

		it("takes a batch from an operator but not from a viewer", async () => {
			await tern.api("POST", "/api/users", { username: "batch-viewer", password: "viewer-pass-1", role: "viewer" });
			const viewer = await login("batch-viewer", "viewer-pass-1");
			const reply = await tern.api("POST", "/api/tasks/batch", { tasks: [{ terminalId: "batch-a", type: "b" }] }, viewer);
			assertError(reply, 403, "FORBIDDEN");
		});
	});

	describe("submit validation", () => {
		before(async () => {
			await tern.registerTerminal("val-term");
		});

		/** Submits a bad body and checks the error and that no task appeared. */
		async function refused(body: unknown, status: number, type: string, message?: RegExp): Promise<ApiReply> {
			const before = await taskTotal();
			const reply = await tern.api("POST", "/api/task/submit", body);
			assertError(reply, status, type, message);
			assert.equal(await taskTotal(), before, "no task was created");
			return reply;
		}

		it("refuses a body that is not JSON with 400 BAD_REQUEST", async () => {
			await refused('{"terminalId": "val-term", "type": ', 400, "BAD_REQUEST", /JSON/);
			await refused("{not json at all}", 400, "BAD_REQUEST", /JSON/);
		});

		it("refuses an unknown field, naming it", async () => {
			const reply = await refused({ terminalId: "val-term", type: "t", priorty: 7 }, 422, "VALIDATION_ERROR", /priorty/);
			assert.doesNotMatch(reply.body.message, /^Parameters validation error!$/);
			await refused(
				{ terminalId: "val-term", type: "t", selector: undefined, backoff: { type: "fixed", delay: 10, jiter: 0.5 } },
				422,
				"VALIDATION_ERROR",
				/jiter/
			);
		});

		it("refuses a priority out of 0–9, naming priority", async () => {
			await refused({ terminalId: "val-term", type: "t", priority: 10 }, 422, "VALIDATION_ERROR", /priority/);
			await refused({ terminalId: "val-term", type: "t", priority: -1 }, 422, "VALIDATION_ERROR", /priority/);
			await refused({ terminalId: "val-term", type: "t", priority: 2.5 }, 422, "VALIDATION_ERROR", /priority/);
		});

		it("refuses a task without a type, naming type", async () => {
			await refused({ terminalId: "val-term", payload: {} }, 422, "VALIDATION_ERROR", /type/);
			await refused({ terminalId: "val-term", type: "" }, 422, "VALIDATION_ERROR", /type/);
		});

		it("needs exactly one of terminalId and selector", async () => {
			await refused(
				{ terminalId: "val-term", selector: { labels: { a: "b" } }, type: "t" },
				422,
				"VALIDATION_ERROR",
				/terminalId.*selector/
			);
			await refused({ type: "t" }, 422, "VALIDATION_ERROR", /terminalId.*selector/);
		});

		it("refuses a payload over 256 KiB with 413 and accepts one just under", async () => {
			// JSON of a string is the string plus its two quotes.
			const over = "x".repeat(256 * 1024 - 1);
			const reply = await refused(
				{ terminalId: "val-term", type: "big", payload: over },
				413,
				"PAYLOAD_TOO_LARGE",
				/payload/
			);
			assert.equal(reply.body.data.limit, 256 * 1024);
			assert.equal(reply.body.data.bytes, 256 * 1024 + 1);

			const before = await taskTotal();
			const under = "x".repeat(256 * 1024 - 2);
			const ok = await tern.api("POST", "/api/task/submit", { terminalId: "val-term", type: "big", payload: under });
			assert.equal(ok.status, 201, JSON.stringify(ok.body).slice(0, 300));
			assert.equal(await taskTotal(), before + 1);
			const view = (await tern.api<TaskView>("GET", `/api/tasks/${ok.body.taskId}`)).body;
			assert.equal((view.payload as string).length, under.length);
		});

		it("refuses an unknown terminalId with 404 TERMINAL_NOT_FOUND", async () => {
			await refused({ terminalId: "no-such-terminal", type: "t" }, 404, "TERMINAL_NOT_FOUND", /no-such-terminal/);
		});

		it("needs a key for consistent_hash and a known strategy", async () => {
			await refused(
				{ selector: { labels: { a: "b" }, strategy: "consistent_hash" }, type: "t" },
				422,
				"VALIDATION_ERROR",
				/selector\.key/
			);
			const unknown = await refused(
				{ selector: { labels: { a: "b" }, strategy: "fastest" }, type: "t" },
				422,
				"VALIDATION_ERROR",
				/'selector\.strategy'/
			);
			// The message tells the value given apart from the allowed ones.
			assert.match(unknown.body.message, /value 'fastest' is not one of the allowed values: round_robin, /);
		});

		it("refuses other out-of-range fields, each named", async () => {
			await refused({ terminalId: "val-term", type: "t", timeout: 0 }, 422, "VALIDATION_ERROR", /timeout/);
			await refused({ terminalId: "val-term", type: "t", maxRetries: -1 }, 422, "VALIDATION_ERROR", /maxRetries/);
			await refused(
				{ terminalId: "val-term", type: "t", backoff: { type: "linear", delay: 10 } },
				422,
				"VALIDATION_ERROR",
				/backoff\.type/
			);
			await refused({ terminalId: "bad id!", type: "t" }, 422, "VALIDATION_ERROR", /terminalId/);
		});
	});

	// ------------------------------------------------------------------ query, get, list

	describe("query, get and list", () => {
		const ids: string[] = [];

		before(async () => {
			await tern.registerTerminal("list-a");
			await tern.registerTerminal("list-b");
			// Five for list-a with priorities 0..4, two for list-b with 7 and 8, one other type.
			for (let p = 0; p < 5; p++)
				ids.push(await tern.submit({ terminalId: "list-a", type: "list-kind", priority: p, payload: { p } }));
			ids.push(await tern.submit({ terminalId: "list-b", type: "list-kind", priority: 7 }));
			ids.push(await tern.submit({ terminalId: "list-b", type: "list-kind", priority: 8 }));
			await tern.submit({ terminalId: "list-b", type: "list-other" });
		});

		it("answers GET /api/task/query with the task's state", async () => {
			const reply = await tern.api<TaskQueryView>("GET", `/api/task/query?taskId=${ids[0]}`);
			assert.equal(reply.status, 200);
			const view = reply.body;
			assert.equal(view.taskId, ids[0]);
			assert.equal(view.status, "PENDING");
			assert.equal(view.data, null);
			assert.equal(view.error, null);
			assert.equal(view.attempt, 0);
			assert.ok(!Number.isNaN(Date.parse(view.createdAt)));
			assert.ok(!Number.isNaN(Date.parse(view.updatedAt)));
			for (const key of ["deliveredAt", "startedAt", "finishedAt", "exitCode", "progress"])
				assert.ok(key in view, `has ${key}`);
			assert.equal(view.deliveredAt, null);
			assert.equal(view.finishedAt, null);
		});

		it("refuses a query without taskId (422) and answers an unknown one with 404 TASK_NOT_FOUND", async () => {
			assertError(await tern.api("GET", "/api/task/query"), 422, "VALIDATION_ERROR", /taskId/);
			assertError(await tern.api("GET", "/api/task/query?taskId=nope-123"), 404, "TASK_NOT_FOUND", /nope-123/);
			assertError(await tern.api("GET", "/api/tasks/nope-456"), 404, "TASK_NOT_FOUND", /nope-456/);
		});

		it("shows the whole task on GET /api/tasks/:id", async () => {
			const reply = await tern.api<TaskView>("GET", `/api/tasks/${ids[3]}`);
			assert.equal(reply.status, 200);
			const view = reply.body;
			assert.equal(view.taskId, ids[3]);
			assert.equal(view.terminalId, "list-a");
			assert.equal(view.type, "list-kind");
			assert.deepEqual(view.payload, { p: 3 });
			assert.equal(view.priority, 3);
			assert.equal(view.timeout, 300);
			assert.equal(view.ackTimeout, 30);
			assert.equal(view.ttl, 86_400);
			assert.equal(view.maxRetries, 0);
			assert.equal(view.retries, 0);
			assert.equal(view.selector, null);
			assert.equal(view.status, "PENDING");
			assert.ok(view.expiresAt && Date.parse(view.expiresAt) > Date.now());
		});

		it("filters by type, terminalId and status", async () => {
			const byType = (await tern.api<TaskPage>("GET", "/api/tasks?type=list-kind&pageSize=100")).body;
			assert.equal(byType.total, 7);
			assert.deepEqual(byType.rows.map(r => r.taskId).sort(), [...ids].sort());
			assert.ok(byType.rows.every(r => r.type === "list-kind"));

			const byTerminal = (await tern.api<TaskPage>("GET", "/api/tasks?terminalId=list-b")).body;
			assert.equal(byTerminal.total, 3);
			assert.ok(byTerminal.rows.every(r => r.terminalId === "list-b"));

			const both = (await tern.api<TaskPage>("GET", "/api/tasks?terminalId=list-b&type=list-kind")).body;
			assert.equal(both.total, 2);

			const cancelled = await tern.api("POST", `/api/tasks/${ids[1]}/cancel`);
			assert.equal(cancelled.status, 200);
			const byStatus = (await tern.api<TaskPage>("GET", "/api/tasks?type=list-kind&status=CANCELLED")).body;
			assert.equal(byStatus.total, 1);
			assert.equal(byStatus.rows[0].taskId, ids[1]);
			assert.equal(byStatus.rows[0].status, "CANCELLED");
			const pending = (await tern.api<TaskPage>("GET", "/api/tasks?type=list-kind&status=PENDING")).body;
			assert.equal(pending.total, 6);
			const either = (await tern.api<TaskPage>("GET", "/api/tasks?type=list-kind&status=PENDING,CANCELLED")).body;
			assert.equal(either.total, 7);
			const none = (await tern.api<TaskPage>("GET", "/api/tasks?type=list-kind&status=COMPLETED")).body;
			assert.equal(none.total, 0);
			assert.deepEqual(none.rows, []);
		});

		it("pages: page, pageSize, total, totalPages, disjoint pages", async () => {
			const seen: string[] = [];
			for (const page of [1, 2, 3]) {
				const reply = await tern.api<TaskPage>("GET", `/api/tasks?type=list-kind&pageSize=3&page=${page}&sort=createdAt`);
				assert.equal(reply.status, 200);
				assert.equal(reply.body.page, page);
				assert.equal(reply.body.pageSize, 3);
				assert.equal(reply.body.total, 7);
				assert.equal(reply.body.totalPages, 3);
				assert.equal(reply.body.rows.length, page < 3 ? 3 : 1);
				seen.push(...reply.body.rows.map(r => r.taskId));
			}
			assert.deepEqual(seen, ids, "oldest first, each task once");
			const beyond = (await tern.api<TaskPage>("GET", "/api/tasks?type=list-kind&pageSize=3&page=4")).body;
			assert.deepEqual(beyond.rows, []);
			assert.equal(beyond.total, 7);
		});

		it("sorts by createdAt and priority, newest first by default", async () => {
			const byDefault = (await tern.api<TaskPage>("GET", "/api/tasks?type=list-kind")).body;
			assert.deepEqual(
				byDefault.rows.map(r => r.taskId),
				[...ids].reverse()
			);
			const byPriority = (await tern.api<TaskPage>("GET", "/api/tasks?type=list-kind&sort=priority")).body;
			assert.deepEqual(
				byPriority.rows.map(r => r.priority),
				[0, 1, 2, 3, 4, 7, 8]
			);
			const byPriorityDesc = (await tern.api<TaskPage>("GET", "/api/tasks?type=list-kind&sort=-priority")).body;
			assert.deepEqual(
				byPriorityDesc.rows.map(r => r.priority),
				[8, 7, 4, 3, 2, 1, 0]
			);
		});

		it("refuses bad list parameters, each named", async () => {
			assertError(await tern.api("GET", "/api/tasks?status=DONE"), 422, "VALIDATION_ERROR", /status/);
			assertError(await tern.api("GET", "/api/tasks?pageSize=0"), 422, "VALIDATION_ERROR", /pageSize/);
			assertError(await tern.api("GET", "/api/tasks?page=0"), 422, "VALIDATION_ERROR", /page/);
			assertError(await tern.api("GET", "/api/tasks?sort=payload"), 422, "VALIDATION_ERROR", /sort/);
		});
	});

	// ------------------------------------------------------------------ HTTP pull fallback

	describe("HTTP pull fallback", () => {
		function pull(token: string | null, terminalId?: string, limit?: number): Promise<ApiReply<{ tasks: TaskPush[] }>> {
			const query = new URLSearchParams();
			if (terminalId) query.set("terminalId", terminalId);
			if (limit) query.set("limit", String(limit));
			return tern.api("GET", `/api/task/pull?${query}`, undefined, token);
		}

		it("hands over tasks in priority order up to the terminal's concurrency and marks them DELIVERED", async () => {
			const token = await tern.registerTerminal("pull-conc", { concurrency: 2 });
			const low = await tern.submit({ terminalId: "pull-conc", type: "t", priority: 1, payload: { n: "low" } });
			const high = await tern.submit({ terminalId: "pull-conc", type: "t", priority: 9, payload: { n: "high" } });
			const mid = await tern.submit({ terminalId: "pull-conc", type: "t", priority: 5, payload: { n: "mid" } });

			const first = await pull(token, "pull-conc");
			assert.equal(first.status, 200, JSON.stringify(first.body));
			assert.deepEqual(
				first.body.tasks.map(t => t.taskId),
				[high, mid]
			);
			assert.deepEqual(first.body.tasks[0].payload, { n: "high" });
			assert.equal(first.body.tasks[0].attempt, 1);
			assert.equal(first.body.tasks[0].type, "t");
			assert.equal(first.body.tasks[0].priority, 9);
			for (const id of [high, mid]) {
				const view = await tern.query(id);
				assert.equal(view.status, "DELIVERED");
				assert.equal(view.attempt, 1);
				assert.ok(view.deliveredAt);
			}
			assert.equal((await tern.query(low)).status, "PENDING");

			// Full: nothing more until one finishes.
			const full = await pull(token);
			assert.equal(full.status, 200);
			assert.deepEqual(full.body.tasks, []);
			assert.equal((await tern.query(low)).status, "PENDING");

			// Ack (an extension of the seed API) and result over HTTP.
			const task = first.body.tasks[0];
			const ack = await tern.api("POST", "/api/task/ack", { taskId: task.taskId, attempt: task.attempt }, token);
			assert.equal(ack.status, 200, JSON.stringify(ack.body));
			assert.equal(ack.body.status, "PROCESSING");
			assert.equal((await tern.query(high)).status, "PROCESSING");

			const result = await tern.api(
				"POST",
				"/api/task/result",
				{ taskId: task.taskId, attempt: task.attempt, status: "success", output: { answer: 42 }, exitCode: 0 },
				token
			);
			assert.equal(result.status, 202, JSON.stringify(result.body));
			assert.equal(result.body.status, "COMPLETED");
			const done = await tern.query(high);
			assert.equal(done.status, "COMPLETED");
			assert.deepEqual(done.data, { answer: 42 });
			assert.equal(done.exitCode, 0);
			assert.ok(done.finishedAt);

			// A retried send of the same result is acknowledged, and changes nothing.
			const again = await tern.api(
				"POST",
				"/api/task/result",
				{ taskId: task.taskId, attempt: task.attempt, status: "failed", error: "late second opinion" },
				token
			);
			assert.equal(again.status, 202, JSON.stringify(again.body));
			assert.equal(again.body.duplicate, true);
			assert.equal(again.body.status, "COMPLETED");
			const still = await tern.query(high);
			assert.equal(still.status, "COMPLETED");
			assert.deepEqual(still.data, { answer: 42 });
			assert.equal(still.error, null);

			// A slot is free again: the last one comes out.
			const next = await pull(token);
			assert.deepEqual(
				next.body.tasks.map(t => t.taskId),
				[low]
			);
			assert.equal((await tern.query(low)).status, "DELIVERED");
		});

		it("a result without an ack completes a pulled task; a failed result records its error", async () => {
			const token = await tern.registerTerminal("pull-noack");
			const ok = await tern.submit({ terminalId: "pull-noack", type: "t" });
			const bad = await tern.submit({ terminalId: "pull-noack", type: "t" });
			const tasks = (await pull(token)).body.tasks;
			assert.equal(tasks.length, 2);
			const r1 = await tern.api(
				"POST",
				"/api/task/result",
				{ taskId: ok, attempt: 1, status: "success", output: "fine" },
				token
			);
			assert.equal(r1.status, 202);
			assert.equal((await tern.query(ok)).status, "COMPLETED");
			const r2 = await tern.api(
				"POST",
				"/api/task/result",
				{ taskId: bad, attempt: 1, status: "failed", error: "broke", exitCode: 2 },
				token
			);
			assert.equal(r2.status, 202);
			const failed = await tern.query(bad);
			assert.equal(failed.status, "FAILED");
			assert.equal(failed.error, "broke");
			assert.equal(failed.exitCode, 2);
		});

		it("refuses a result for a superseded attempt with 409 STALE_ATTEMPT", async () => {
			const token = await tern.registerTerminal("pull-stale");
			const taskId = await tern.submit({ terminalId: "pull-stale", type: "t", ackTimeout: 0.1, timeout: 0.1 });
			const first = (await pull(token)).body.tasks;
			assert.equal(first.length, 1);
			assert.equal(first[0].attempt, 1);
			// Neither acked nor answered in time: back to the queue, then pulled again as attempt 2.
			await tern.waitForStatus(taskId, "PENDING");
			const second = (await pull(token)).body.tasks;
			assert.equal(second.length, 1);
			assert.equal(second[0].taskId, taskId);
			assert.equal(second[0].attempt, 2);

			const stale = await tern.api(
				"POST",
				"/api/task/result",
				{ taskId, attempt: 1, status: "success", output: "old" },
				token
			);
			assertError(stale, 409, "STALE_ATTEMPT", /current attempt is 2/);
			const view = await tern.query(taskId);
			assert.equal(view.status, "DELIVERED");
			assert.equal(view.attempt, 2);
			assert.equal(view.data, null);

			const staleAck = await tern.api("POST", "/api/task/ack", { taskId, attempt: 1 }, token);
			assertError(staleAck, 409, "STALE_ATTEMPT");
			assert.equal((await tern.query(taskId)).status, "DELIVERED");

			const fresh = await tern.api(
				"POST",
				"/api/task/result",
				{ taskId, attempt: 2, status: "success", output: "new" },
				token
			);
			assert.equal(fresh.status, 202);
			assert.equal((await tern.query(taskId)).data, "new");
		});

		it("refuses a result that names the wrong attempt or is invalid, and changes nothing", async () => {
			const token = await tern.registerTerminal("pull-wrong");
			const taskId = await tern.submit({ terminalId: "pull-wrong", type: "t" });
			assert.equal((await pull(token)).body.tasks.length, 1);
			assertError(
				await tern.api("POST", "/api/task/result", { taskId, attempt: 5, status: "success" }, token),
				409,
				"STALE_ATTEMPT"
			);
			assertError(
				await tern.api("POST", "/api/task/result", { taskId, attempt: 1, status: "done" }, token),
				422,
				"VALIDATION_ERROR",
				/status/
			);
			assertError(
				await tern.api("POST", "/api/task/result", { taskId, status: "success" }, token),
				422,
				"VALIDATION_ERROR",
				/attempt/
			);
			assertError(
				await tern.api("POST", "/api/task/result", { taskId: "missing-task", attempt: 1, status: "success" }, token),
				404,
				"TASK_NOT_FOUND"
			);
			const view = await tern.query(taskId);
			assert.equal(view.status, "DELIVERED");
			assert.equal(view.attempt, 1);
		});

		it("is for terminals only, and only for their own tasks", async () => {
			const mine = await tern.registerTerminal("pull-mine");
			const theirsToken = await tern.registerTerminal("pull-theirs");
			const theirsTask = await tern.submit({ terminalId: "pull-theirs", type: "t" });
			const mineTask = await tern.submit({ terminalId: "pull-mine", type: "t" });

			// A user token.
			assertError(await pull(tern.adminToken, "pull-theirs"), 403, "FORBIDDEN", /terminal/);
			assertError(
				await tern.api("POST", "/api/task/result", { taskId: theirsTask, attempt: 1, status: "success" }),
				403,
				"FORBIDDEN"
			);
			assert.equal((await tern.query(theirsTask)).status, "PENDING");

			// Another terminal's id with my token.
			assertError(await pull(mine, "pull-theirs"), 403, "FORBIDDEN", /pull-theirs/);
			assert.equal((await tern.query(theirsTask)).status, "PENDING");
			assert.equal((await tern.query(mineTask)).status, "PENDING");

			// No terminal at all.
			assertError(await pull(null), 401, "UNAUTHORIZED");

			// A result for a task someone else holds.
			const theirs = (await pull(theirsToken)).body.tasks;
			assert.equal(theirs.length, 1);
			const stolen = await tern.api(
				"POST",
				"/api/task/result",
				{ taskId: theirsTask, attempt: 1, status: "success", output: "mine now" },
				mine
			);
			assertError(stolen, 403, "TASK_NOT_YOURS");
			const stolenAck = await tern.api("POST", "/api/task/ack", { taskId: theirsTask, attempt: 1 }, mine);
			assertError(stolenAck, 403, "TASK_NOT_YOURS");
			const view = await tern.query(theirsTask);
			assert.equal(view.status, "DELIVERED");
			assert.equal(view.data, null);

			// My own pull still gets mine only.
			const own = (await pull(mine)).body.tasks;
			assert.deepEqual(
				own.map(t => t.taskId),
				[mineTask]
			);
		});

		it("shares one state machine with the socket: pulled and acked over HTTP, answered over socket.io", async () => {
			const token = await tern.registerTerminal("pull-mixed");
			const taskId = await tern.submit({ terminalId: "pull-mixed", type: "t" });
			const pulled = (await pull(token)).body.tasks;
			assert.equal(pulled.length, 1);
			assert.equal(pulled[0].taskId, taskId);
			const ack = await tern.api("POST", "/api/task/ack", { taskId, attempt: 1 }, token);
			assert.equal(ack.status, 200);
			assert.equal((await tern.query(taskId)).status, "PROCESSING");

			const terminal = await tern.connectTerminal("pull-mixed", token);
			const reply = await terminal.result(pulled[0], "success", { via: "socket" }, { exitCode: 0 });
			assert.equal(reply.ok, true, JSON.stringify(reply));
			assert.equal(reply.status, "COMPLETED");
			const done = await tern.query(taskId);
			assert.equal(done.status, "COMPLETED");
			assert.deepEqual(done.data, { via: "socket" });
			assert.equal(terminal.tasks.length, 0, "the pulled task was not pushed again");

			// And the other way round: pushed over the socket, answered over HTTP.
			const second = await tern.submit({ terminalId: "pull-mixed", type: "t" });
			const pushed = await terminal.nextTask();
			assert.equal(pushed.taskId, second);
			await terminal.ack(pushed);
			const dupOverSocket = await terminal.result(pulled[0], "success", { via: "socket" });
			assert.equal(dupOverSocket.duplicate, true);
			const http = await tern.api(
				"POST",
				"/api/task/result",
				{ taskId: second, attempt: pushed.attempt, status: "success", output: "via http" },
				token
			);
			assert.equal(http.status, 202);
			assert.equal((await tern.query(second)).status, "COMPLETED");
			const late = await terminal.result(pushed, "failed", null, { error: "too late" });
			assert.equal(late.duplicate, true);
			assert.equal((await tern.query(second)).data, "via http");
			terminal.close();
		});
	});

	// ------------------------------------------------------------------ terminals

	describe("terminal management", () => {
		async function terminalIds(): Promise<string[]> {
			const reply = await tern.api<TerminalView[]>("GET", "/api/terminals");
			assert.equal(reply.status, 200);
			return reply.body.map(t => t.id).sort();
		}

		it("registers a terminal: 201 with id, token, offline status, labels and concurrency", async () => {
			const reply = await tern.api("POST", "/api/terminals", {
				id: "mgmt-1",
				name: "Build box",
				labels: { region: "eu", gpu: "true" },
				concurrency: 4
			});
			assert.equal(reply.status, 201, JSON.stringify(reply.body));
			assert.equal(reply.body.id, "mgmt-1");
			assert.equal(typeof reply.body.token, "string");
			assert.equal(reply.body.token.split(".").length, 3);
			assert.equal(reply.body.status, "offline");
			assert.deepEqual(reply.body.labels, { region: "eu", gpu: "true" });
			assert.equal(reply.body.concurrency, 4);
			assert.equal(reply.body.name, "Build box");

			const listed = await tern.api<TerminalView>("GET", "/api/terminals/mgmt-1");
			assert.equal(listed.status, 200);
			assert.equal(listed.body.status, "offline");
			assert.equal(listed.body.lastActiveAt, null);
			assert.equal((listed.body as unknown as Record<string, unknown>).token, undefined, "the token is shown once");

			const shorthand = await tern.api("POST", "/api/terminals", { id: "mgmt-2", labels: ["gpu", "linux"] });
			assert.equal(shorthand.status, 201);
			assert.deepEqual(shorthand.body.labels, { gpu: "true", linux: "true" });
			assert.equal(shorthand.body.concurrency, 16, "default concurrency");

			const generated = await tern.api("POST", "/api/terminals", {});
			assert.equal(generated.status, 201);
			assert.match(generated.body.id, /^t-/);
		});

		it("refuses a duplicate id with 409 TERMINAL_EXISTS and leaves the original as it was", async () => {
			const before = await terminalIds();
			const original = (await tern.api("GET", "/api/terminals/mgmt-1")).body;
			const dup = await tern.api("POST", "/api/terminals", { id: "mgmt-1", labels: { region: "us" }, concurrency: 1 });
			assertError(dup, 409, "TERMINAL_EXISTS", /mgmt-1/);
			assert.equal(dup.body.token, undefined);
			assert.deepEqual(await terminalIds(), before);
			assert.deepEqual((await tern.api("GET", "/api/terminals/mgmt-1")).body, original);
		});

		it("refuses invalid registrations, naming the field, and creates nothing", async () => {
			const before = await terminalIds();
			assertError(
				await tern.api("POST", "/api/terminals", { id: "mgmt-bad1", labels: 42 }),
				422,
				"VALIDATION_ERROR",
				/labels/
			);
			assertError(
				await tern.api("POST", "/api/terminals", { id: "mgmt-bad2", labels: "gpu" }),
				422,
				"VALIDATION_ERROR",
				/labels/
			);
			assertError(
				await tern.api("POST", "/api/terminals", { id: "mgmt-bad3", labels: { gpu: { nested: true } } }),
				422,
				"VALIDATION_ERROR",
				/labels/
			);
			assertError(
				await tern.api("POST", "/api/terminals", { id: "mgmt-bad4", concurrency: 0 }),
				422,
				"VALIDATION_ERROR",
				/concurrency/
			);
			assertError(await tern.api("POST", "/api/terminals", { id: "has spaces" }), 422, "VALIDATION_ERROR", /id/);
			assertError(
				await tern.api("POST", "/api/terminals", { id: "mgmt-bad5", colour: "red" }),
				422,
				"VALIDATION_ERROR",
				/colour/
			);
			assert.deepEqual(await terminalIds(), before);
			for (const id of ["mgmt-bad1", "mgmt-bad2", "mgmt-bad3", "mgmt-bad4", "mgmt-bad5"])
				assertError(await tern.api("GET", `/api/terminals/${id}`), 404, "TERMINAL_NOT_FOUND");
		});

		it("lists terminals with status online/offline/disabled and lastActiveAt", async () => {
			const onlineToken = await tern.registerTerminal("mgmt-online");
			await tern.registerTerminal("mgmt-disabled");
			const terminal = await tern.connectTerminal("mgmt-online", onlineToken);
			assert.equal((await tern.api("POST", "/api/terminals/mgmt-disabled/disable")).status, 200);

			const reply = await tern.api<TerminalView[]>("GET", "/api/terminals");
			assert.equal(reply.status, 200);
			assert.ok(Array.isArray(reply.body));
			for (const view of reply.body) {
				assert.ok(["online", "offline", "disabled"].includes(view.status), `${view.id}: ${view.status}`);
				assert.ok("lastActiveAt" in view, `${view.id} has lastActiveAt`);
				assert.ok("labels" in view);
			}
			const byId = new Map(reply.body.map(v => [v.id, v]));
			assert.equal(byId.get("mgmt-online")?.status, "online");
			assert.ok(byId.get("mgmt-online")?.lastActiveAt && !Number.isNaN(Date.parse(byId.get("mgmt-online")!.lastActiveAt!)));
			assert.equal(byId.get("mgmt-1")?.status, "offline");
			assert.equal(byId.get("mgmt-disabled")?.status, "disabled");

			const onlyOnline = (await tern.api<TerminalView[]>("GET", "/api/terminals?status=online")).body;
			assert.ok(onlyOnline.some(v => v.id === "mgmt-online"));
			assert.ok(onlyOnline.every(v => v.status === "online"));

			terminal.close();
			await tern.waitForTerminal("mgmt-online", "offline");
			const after = (await tern.api<TerminalView>("GET", "/api/terminals/mgmt-online")).body;
			assert.ok(after.lastActiveAt, "lastActiveAt is kept after disconnect");
		});

		it("answers an unknown terminal with 404 TERMINAL_NOT_FOUND on every route", async () => {
			assertError(await tern.api("GET", "/api/terminals/no-such"), 404, "TERMINAL_NOT_FOUND", /no-such/);
			assertError(await tern.api("POST", "/api/terminals/no-such/disable"), 404, "TERMINAL_NOT_FOUND");
			assertError(await tern.api("POST", "/api/terminals/no-such/enable"), 404, "TERMINAL_NOT_FOUND");
			assertError(await tern.api("POST", "/api/terminals/no-such/rotate-key"), 404, "TERMINAL_NOT_FOUND");
			assertError(await tern.api("GET", "/api/terminals/no-such"), 404, "TERMINAL_NOT_FOUND");
		});

		it("disables a terminal: its socket is told and dropped, it cannot connect or pull, its tasks wait", async () => {
			const token = await tern.registerTerminal("mgmt-dis");
			const terminal = await tern.connectTerminal("mgmt-dis", token);

			const disabled = await tern.api("POST", "/api/terminals/mgmt-dis/disable");
			assert.equal(disabled.status, 200, JSON.stringify(disabled.body));
			assert.equal(disabled.body.status, "disabled");
			assert.equal(disabled.body.enabled, false);
			await waitFor(
				() => terminal.errors.some(e => e.type === "TERMINAL_DISABLED"),
				5000,
				() => "a TERMINAL_DISABLED error event"
			);
			await waitFor(
				() => !terminal.socket.connected,
				5000,
				() => "the socket to be disconnected"
			);
			assert.equal((await tern.api("GET", "/api/terminals/mgmt-dis")).body.status, "disabled");

			await assert.rejects(tern.connectTerminal("mgmt-dis", token), (err: Error & { data?: { type: string } }) => {
				assert.equal(err.data?.type, "TERMINAL_DISABLED");
				return true;
			});
			assertError(await tern.api("GET", "/api/task/pull", undefined, token), 403, "TERMINAL_DISABLED");

			const taskId = await tern.submit({ terminalId: "mgmt-dis", type: "t" });
			assert.equal((await tern.query(taskId)).status, "PENDING");
			// Another terminal's task goes through a full drain meanwhile: the disabled one's still waits.
			const probeToken = await tern.registerTerminal("mgmt-probe");
			const probe = await tern.connectTerminal("mgmt-probe", probeToken);
			await tern.submit({ terminalId: "mgmt-probe", type: "t" });
			await probe.nextTask();
			assert.equal((await tern.query(taskId)).status, "PENDING");
			assert.equal((await tern.query(taskId)).attempt, 0);
			probe.close();

			const enabled = await tern.api("POST", "/api/terminals/mgmt-dis/enable");
			assert.equal(enabled.status, 200);
			assert.equal(enabled.body.status, "offline");
			assert.equal(enabled.body.enabled, true);
			const again = await tern.connectTerminal("mgmt-dis", token);
			const task = await again.nextTask();
			assert.equal(task.taskId, taskId);
			assert.equal((await tern.query(taskId)).status, "DELIVERED");
			assert.equal((await tern.api("GET", "/api/terminals/mgmt-dis")).body.status, "online");
			again.close();
		});

		it("rotates a terminal's key: the old token is refused everywhere, the new one works", async () => {
			const oldToken = await tern.registerTerminal("mgmt-rot");
			const terminal = await tern.connectTerminal("mgmt-rot", oldToken);

			const rotated = await confirmedCall(`${tern.url}/api/terminals/mgmt-rot/rotate-key`, "POST", tern.adminToken);
			assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
			assert.equal(rotated.body.id, "mgmt-rot");
			const newToken = rotated.body.token as string;
			assert.equal(typeof newToken, "string");
			assert.notEqual(newToken, oldToken);

			// The live session made with the old key ends.
			await waitFor(
				() => terminal.errors.some(e => e.type === "INVALID_TOKEN"),
				5000,
				() => "an INVALID_TOKEN error event"
			);
			await waitFor(
				() => !terminal.socket.connected,
				5000,
				() => "the old socket to be disconnected"
			);
			await tern.waitForTerminal("mgmt-rot", "offline");

			await assert.rejects(
				tern.connectTerminal("mgmt-rot", oldToken),
				(err: Error & { data?: { type: string; message: string } }) => {
					assert.equal(err.data?.type, "INVALID_TOKEN");
					assert.match(err.data?.message ?? "", /rotated/);
					return true;
				}
			);
			assertError(await tern.api("GET", "/api/task/pull?terminalId=mgmt-rot", undefined, oldToken), 401, "INVALID_TOKEN");

			const pulled = await tern.api("GET", "/api/task/pull?terminalId=mgmt-rot", undefined, newToken);
			assert.equal(pulled.status, 200);
			assert.deepEqual(pulled.body.tasks, []);
			const fresh = await tern.connectTerminal("mgmt-rot", newToken);
			const taskId = await tern.submit({ terminalId: "mgmt-rot", type: "t" });
			assert.equal((await fresh.nextTask()).taskId, taskId);
			fresh.close();
		});

		it("lets only operators and admins manage terminals", async () => {
			await tern.api("POST", "/api/users", { username: "vera", password: "viewer-pass-2", role: "viewer" });
			const viewer = await login("vera", "viewer-pass-2");
			const token = await tern.registerTerminal("mgmt-guarded");
			assertError(await tern.api("POST", "/api/terminals/mgmt-guarded/disable", undefined, viewer), 403, "FORBIDDEN");
			assertError(await tern.api("POST", "/api/terminals/mgmt-guarded/rotate-key", undefined, viewer), 403, "FORBIDDEN");
			assert.equal((await tern.api("GET", "/api/terminals/mgmt-guarded", undefined, viewer)).body.status, "offline");
			// The old token still works: nothing was rotated.
			assert.equal((await tern.api("GET", "/api/task/pull", undefined, token)).status, 200);
			// A terminal token cannot manage terminals either.
			assertError(await tern.api("POST", "/api/terminals", { id: "made-by-terminal" }, token), 403, "FORBIDDEN");
			assertError(await tern.api("GET", "/api/terminals/made-by-terminal"), 404, "TERMINAL_NOT_FOUND");
		});
	});
});
