/**
 * Destructive operations behind a second confirmation (design §6) — deleting a job, deleting a
 * script (every version), purging finished tasks — and the ownership rule: an operator cancels
 * only the tasks it submitted; an admin any; a viewer none.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestTern } from "../helpers/tern.ts";
import { confirmed, unconfirmed } from "../support/confirm.ts";
import { TestDatabase } from "../helpers/mysql.ts";
import { needs } from "../support/servers.ts";

describe("second confirmation and ownership", () => {
	let tern: TestTern;
	const tokens: Record<string, string> = {};

	before(async () => {
		tern = await TestTern.start();
		for (const [username, role] of [
			["d-op-a", "operator"],
			["d-op-b", "operator"],
			["d-viewer", "viewer"]
		]) {
			const made = await tern.api("POST", "/api/users", { username, password: `${username}-password`, role });
			assert.equal(made.status, 201, JSON.stringify(made.body));
			const login = await tern.api("POST", "/api/auth/login", { username, password: `${username}-password` }, null);
			tokens[username] = login.body.token;
		}
		await tern.registerTerminal("d-term");
	});
	after(() => tern.close());

	const url = (path: string) => tern.url + path;

	async function taskTotal(): Promise<number> {
		return (await tern.api<{ total: number }>("GET", "/api/tasks?pageSize=1")).body.total;
	}

	describe("cancel ownership", () => {
		it("lets an operator cancel its own task, not another operator's; an admin any; a viewer none", async () => {
			const submit = async (token: string) =>
				(await tern.api("POST", "/api/task/submit", { terminalId: "d-term", type: "own" }, token)).body.taskId as string;
			const mine = await submit(tokens["d-op-a"]!);
			const theirs = await submit(tokens["d-op-b"]!);
			const refused = await tern.api("POST", `/api/tasks/${theirs}/cancel`, undefined, tokens["d-op-a"]);
			assert.equal(refused.status, 403, JSON.stringify(refused.body));
			assert.equal(refused.body.type, "FORBIDDEN");
			assert.match(refused.body.message, /operators cancel their own tasks/);
			assert.equal((await tern.query(theirs)).status, "PENDING", "untouched");
			assert.equal((await tern.api("POST", `/api/tasks/${theirs}/cancel`, undefined, tokens["d-viewer"])).status, 403);
			assert.equal(
				(await tern.api("POST", `/api/tasks/${mine}/cancel`, undefined, tokens["d-op-a"])).body.status,
				"CANCELLED"
			);
			assert.equal((await tern.api("POST", `/api/tasks/${theirs}/cancel`)).body.status, "CANCELLED");
		});
	});

	describe("DELETE /api/jobs/:id", () => {
		it("answers 202 with a confirmation and deletes nothing; confirmed, it deletes", async () => {
			const job = await tern.api("POST", "/api/jobs", {
				name: "doomed",
				schedule: { every: 3_600_000 },
				task: { terminalId: "d-term", type: "job" }
			});
			assert.equal(job.status, 201, JSON.stringify(job.body));
			const id = job.body.id as string;
			const asked = await unconfirmed(url(`/api/jobs/${id}`), "DELETE", undefined, tern.adminToken);
			assert.equal(asked.status, 202, JSON.stringify(asked.body));
			assert.equal(asked.body.confirm.action, "scheduler.remove");
			assert.match(asked.body.confirm.summary, /doomed/);
			assert.equal((await tern.api("GET", `/api/jobs/${id}`)).status, 200, "still there");
			const bad = await unconfirmed(url(`/api/jobs/${id}`), "DELETE", undefined, tern.adminToken, "forged.token");
			assert.ok(bad.status >= 400 && bad.status < 500, JSON.stringify(bad.body));
			assert.equal((await tern.api("GET", `/api/jobs/${id}`)).status, 200, "still there after a forged token");
			const done = await unconfirmed(
				url(`/api/jobs/${id}`),
				"DELETE",
				undefined,
				tern.adminToken,
				asked.body.confirm.token
			);
			assert.deepEqual(done.body, { id, removed: true });
			assert.equal((await tern.api("GET", `/api/jobs/${id}`)).status, 404);
		});
	});

	describe("DELETE /api/scripts/:name", () => {
		it("answers 404 SCRIPT_NOT_FOUND for a name that is not there", async () => {
			const reply = await unconfirmed(url("/api/scripts/never-made"), "DELETE", undefined, tern.adminToken);
			assert.equal(reply.status, 404);
			assert.equal(reply.body.type, "SCRIPT_NOT_FOUND");
		});

		it("is for admins only", async () => {
			const reply = await unconfirmed(url("/api/scripts/any"), "DELETE", undefined, tokens["d-op-a"]!);
			assert.equal(reply.status, 403);
			assert.match(reply.body.message, /'admin' role/);
		});

		it("deletes every version after the confirmation, and nothing before", async () => {
			for (const body of ["echo 1", "echo 2"])
				assert.equal((await tern.api("POST", "/api/scripts", { name: "gone", interpreter: "sh", body })).status, 201);
			assert.equal(
				(await tern.api("POST", "/api/scripts", { name: "kept", interpreter: "sh", body: "echo k" })).status,
				201
			);
			const asked = await unconfirmed(url("/api/scripts/gone"), "DELETE", undefined, tern.adminToken);
			assert.equal(asked.status, 202);
			assert.match(asked.body.confirm.summary, /2 versions/);
			assert.equal((await tern.api("GET", "/api/scripts/gone/versions/1")).status, 200, "still there");
			const done = await confirmed(url("/api/scripts/gone"), "DELETE", undefined, tern.adminToken);
			assert.equal(done.status, 200, JSON.stringify(done.body));
			assert.equal(done.body.versions, 2);
			for (const path of ["/api/scripts/gone", "/api/scripts/gone/versions/1", "/api/scripts/gone/versions/2"])
				assert.equal((await tern.api("GET", path)).body.type, "SCRIPT_NOT_FOUND", path);
			assert.equal((await tern.api("GET", "/api/scripts/kept")).status, 200);
		});
	});

	describe("POST /api/tasks/purge", () => {
		it("refuses a 'before' that is not a date, and an unknown or non-final status, naming the field", async () => {
			for (const [body, field] of [
				[{}, "before"],
				[{ before: "yesterday" }, "before"],
				[{ before: "2020-01-01T00:00:00Z", status: ["PENDING"] }, "status[0]"],
				[{ before: "2020-01-01T00:00:00Z", status: "COMPLETED" }, "status"],
				[{ before: "2020-01-01T00:00:00Z", force: true }, "force"]
			] as const) {
				const reply = await tern.api("POST", "/api/tasks/purge", body);
				assert.equal(reply.status, 422, `${JSON.stringify(body)}: ${JSON.stringify(reply.body)}`);
				assert.ok(
					JSON.stringify(reply.body).includes(`"${field}`) || reply.body.message.includes(`'${field}'`),
					`${JSON.stringify(body)} names ${field}: ${JSON.stringify(reply.body)}`
				);
			}
		});

		it("says how many finished tasks would go, deletes nothing until confirmed, then them and their output only", async () => {
			const finished: string[] = [];
			for (let i = 0; i < 3; i++) {
				const id = await tern.submit({ terminalId: "d-term", type: "old" });
				await tern.api("POST", `/api/tasks/${id}/cancel`);
				finished.push(id);
			}
			const waiting = await tern.submit({ terminalId: "d-term", type: "waiting" });
			const totalBefore = await taskTotal();
			const body = { before: new Date(Date.now() + 60_000).toISOString(), status: ["CANCELLED"] };
			const asked = await unconfirmed(url("/api/tasks/purge"), "POST", body, tern.adminToken);
			assert.equal(asked.status, 202, JSON.stringify(asked.body));
			const cancelled = (await tern.api("GET", "/api/tasks?status=CANCELLED&pageSize=1")).body.total as number;
			assert.match(asked.body.confirm.summary, new RegExp(`Deletes ${cancelled} finished tasks`));
			assert.equal(await taskTotal(), totalBefore, "nothing deleted yet");
			// A token for one purge confirms no other.
			const other = await unconfirmed(
				url("/api/tasks/purge"),
				"POST",
				{ before: body.before },
				tern.adminToken,
				asked.body.confirm.token
			);
			assert.equal(other.status >= 400 && other.status < 500, true, JSON.stringify(other.body));
			const done = await unconfirmed(url("/api/tasks/purge"), "POST", body, tern.adminToken, asked.body.confirm.token);
			assert.equal(done.status, 200, JSON.stringify(done.body));
			assert.deepEqual(done.body, { deleted: cancelled });
			for (const id of finished) assert.equal((await tern.api("GET", `/api/tasks/${id}`)).status, 404);
			assert.equal((await tern.query(waiting)).status, "PENDING", "an unfinished task stays");
			assert.equal(await taskTotal(), totalBefore - cancelled);
		});
	});
});

describe("POST /api/tasks/purge on MariaDB", { skip: needs("mariadb") }, () => {
	let db: TestDatabase;
	let tern: TestTern;
	let termToken: string;

	before(async () => {
		db = await TestDatabase.create("tern_purge");
		tern = await TestTern.start({ dbUri: db.uri });
		termToken = await tern.registerTerminal("m-term");
	});
	after(async () => {
		await tern?.close();
		await db?.drop();
	});

	it("deletes the finished tasks in scope and their output, and keeps the rest", async () => {
		// A task that ran and streamed output, through pull, ack, progress and result.
		const old = await tern.submit({ terminalId: "m-term", type: "old" });
		const token = termToken;
		const [pushed] = (await tern.api("GET", "/api/task/pull?terminalId=m-term", undefined, token)).body.tasks;
		const ids = { taskId: old, attempt: pushed.attempt };
		assert.equal((await tern.api("POST", "/api/task/ack", ids, token)).status, 200);
		assert.equal((await tern.api("POST", "/api/task/progress", { ...ids, log: "line one" }, token)).status, 200);
		assert.equal((await tern.api("POST", "/api/task/result", { ...ids, status: "success" }, token)).status, 202);
		assert.equal((await tern.api("GET", `/api/tasks/${old}/logs`)).body.lines.length, 1);
		const logRows = async () => {
			const service = tern.broker.getLocalService("dispatcher") as unknown as {
				dispatcher: { core: { store: { logs(id: string, after: number, limit: number): Promise<unknown[]> } } };
			};
			return (await service.dispatcher.core.store.logs(old, 0, 10)).length;
		};
		assert.equal(await logRows(), 1);
		const waiting = await tern.submit({ terminalId: "m-term", type: "waiting" });
		const body = { before: new Date(Date.now() + 60_000).toISOString() };
		const asked = await unconfirmed(`${tern.url}/api/tasks/purge`, "POST", body, tern.adminToken);
		assert.match(asked.body.confirm.summary, /Deletes 1 finished task /);
		const done = await unconfirmed(`${tern.url}/api/tasks/purge`, "POST", body, tern.adminToken, asked.body.confirm.token);
		assert.deepEqual(done.body, { deleted: 1 });
		assert.equal((await tern.api("GET", `/api/tasks/${old}`)).status, 404);
		assert.equal(await logRows(), 0, "its output went with it");
		assert.equal((await tern.query(waiting)).status, "PENDING");
	});
});
