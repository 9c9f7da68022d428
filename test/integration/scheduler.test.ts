/**
 * Jobs against a real Tern: the REST surface under /api/jobs, and what the scheduler does with
 * a job — when it fires, what each fire creates, and the ledger row every computed fire time
 * gets (FIRED, CAUGHT_UP, SKIPPED_OVERLAP, MISSED, PAUSED, NO_TERMINAL). Times are checked
 * against the ledger, which the scheduler writes; waits end on conditions, never on sleeps
 * (a downtime is made by moving the ledger into the past).
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Sequelize } from "sequelize";
import type { Context, Service, ServiceBroker } from "moleculer";
import { TestTern, waitFor, type ApiReply, type TestTerminal } from "../helpers/tern.ts";
import { confirmed } from "../support/confirm.ts";
import { TestDatabase } from "../helpers/mysql.ts";
import type { TaskPush, TaskView } from "../../lib/contracts.ts";
import type { FireEvent } from "../../lib/contracts.ts";
import { needs } from "../support/servers.ts";

interface JobView {
	id: string;
	name: string;
	schedule: Record<string, unknown>;
	task: Record<string, unknown>;
	misfirePolicy: string;
	overlapPolicy: string;
	catchUpWindow: number;
	startAt: string | null;
	endAt: string | null;
	enabled: boolean;
	status: "active" | "paused" | "ended";
	nextFireTimes: string[];
	pausedAt: string | null;
	createdBy: string | null;
	createdAt: string;
	updatedAt: string;
	version: number;
}

interface FireView {
	jobId: string;
	fireTime: string;
	outcome: string;
	manual: boolean;
	taskId: string | null;
	taskIds: string[];
	node: string | null;
	claimedAt: string;
	firedAt: string | null;
	finishedAt: string | null;
	lateness: number | null;
	detail: string | null;
}

const ms = (iso: string | null): number => {
	assert.ok(iso !== null, "a time");
	const t = Date.parse(iso);
	assert.ok(!Number.isNaN(t), `an ISO time: ${iso}`);
	return t;
};

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Asserts an error reply: status, `type`, and the message. */
function assertError(reply: ApiReply, status: number, type: string, message?: RegExp): void {
	assert.equal(reply.status, status, `expected ${status} ${type}, got ${reply.status} ${JSON.stringify(reply.body)}`);
	assert.equal(reply.body?.type, type, `expected type ${type}, got ${JSON.stringify(reply.body)}`);
	assert.equal(reply.body.code, status);
	if (message) assert.match(reply.body.message, message);
}

/** Asserts that consecutive fire times (ascending) are `interval` apart: no fire time lacks a row. */
function assertNoGaps(rows: FireView[], interval: number): void {
	for (let i = 1; i < rows.length; i++)
		assert.equal(
			ms(rows[i].fireTime) - ms(rows[i - 1].fireTime),
			interval,
			`fire times ${rows[i - 1].fireTime} and ${rows[i].fireTime} should be ${interval} ms apart: ${outcomes(rows)}`
		);
}

const outcomes = (rows: FireView[]) => rows.map(r => `${r.fireTime} ${r.outcome}`).join(", ");

/** Jobs, the ledger and terminals, on whichever node `node()` is now. */
function jobsClient(node: () => TestTern) {
	const created: string[] = [];

	async function createJob(body: Record<string, unknown>, token?: string): Promise<JobView> {
		const reply = await node().api<JobView>("POST", "/api/jobs", body, token);
		assert.equal(reply.status, 201, JSON.stringify(reply.body));
		created.push(reply.body.id);
		return reply.body;
	}

	async function getJob(id: string): Promise<JobView> {
		const reply = await node().api<JobView>("GET", `/api/jobs/${id}`);
		assert.equal(reply.status, 200, JSON.stringify(reply.body));
		return reply.body;
	}

	/** The whole ledger of a job, oldest fire time first. */
	async function ledger(id: string): Promise<FireView[]> {
		const reply = await node().api<{ rows: FireView[]; total: number }>("GET", `/api/jobs/${id}/history?pageSize=500`);
		assert.equal(reply.status, 200, JSON.stringify(reply.body));
		// (total is counted apart from the rows: a fire in between may make them differ by one)
		assert.ok(reply.body.rows.length < 500, "the whole ledger in one page");
		return [...reply.body.rows].sort((a, b) => ms(a.fireTime) - ms(b.fireTime));
	}

	/** Polls the ledger until `done` holds; returns it. */
	async function waitForLedger(
		id: string,
		done: (rows: FireView[]) => boolean,
		what: string,
		timeoutMs = 8000
	): Promise<FireView[]> {
		let rows: FireView[] = [];
		await waitFor(
			async () => done((rows = await ledger(id))),
			timeoutMs,
			() => `${what} (ledger: ${outcomes(rows)})`
		);
		return rows;
	}

	const fired = (rows: FireView[]) => rows.filter(r => r.outcome === "FIRED" && !r.manual);

	/** Deletes every job created through createJob since the last call. */
	async function removeAll(): Promise<void> {
		for (const id of created.splice(0)) {
			const reply = await confirmed(`${node().url}/api/jobs/${id}`, "DELETE", undefined, node().adminToken);
			assert.ok(reply.status === 200 || reply.status === 404, JSON.stringify(reply.body));
		}
	}

	return { createJob, getJob, ledger, waitForLedger, fired, removeAll };
}

/** Makes a terminal answer every task it gets: ack, then (after `holdMs`) a success. Returns when each result was sent. */
function answerAll(terminal: TestTerminal, holdMs = 0): Map<string, number> {
	const resultSentAt = new Map<string, number>();
	terminal.socket.on("task", (task: TaskPush) => {
		void (async () => {
			await terminal.ack(task);
			if (holdMs > 0) await new Promise(resolve => setTimeout(resolve, holdMs)); // the terminal "works"
			resultSentAt.set(task.taskId, Date.now());
			await terminal.result(task, "success", { done: task.taskId });
		})();
	});
	return resultSentAt;
}

describe("scheduler", () => {
	let tern: TestTern;
	const jobs = jobsClient(() => tern);
	const { createJob, getJob, ledger, waitForLedger, fired } = jobs;

	before(async () => {
		tern = await TestTern.start();
	});
	afterEach(() => jobs.removeAll());
	after(() => tern.close());

	async function jobTotal(): Promise<number> {
		const reply = await tern.api<{ total: number }>("GET", "/api/jobs?pageSize=1");
		assert.equal(reply.status, 200);
		return reply.body.total;
	}

	/** A registered terminal, connected and online. */
	async function onlineTerminal(id: string, extra: Record<string, unknown> = {}, concurrency?: number) {
		const token = await tern.registerTerminal(id, extra);
		return tern.connectTerminal(id, token, concurrency ? { concurrency } : {});
	}

	// ------------------------------------------------------------------ the API

	describe("jobs API", () => {
		before(async () => {
			await tern.registerTerminal("api-term");
		});

		it("creates (201 with the next five fire times), lists, gets, updates and deletes a job", async () => {
			const yearly = "0 0 1 1 *";
			const before = await jobTotal();
			const reply = await tern.api<JobView>("POST", "/api/jobs", {
				name: "api-crud",
				schedule: { cron: yearly, timezone: "Europe/Paris" },
				task: { terminalId: "api-term", type: "report", payload: { year: true }, priority: 3 },
				misfirePolicy: "fire_once",
				overlapPolicy: "forbid",
				catchUpWindow: 120
			});
			assert.equal(reply.status, 201, JSON.stringify(reply.body));
			const job = reply.body;
			assert.equal(reply.headers.get("location"), `/api/jobs/${job.id}`);
			assert.equal(job.name, "api-crud");
			assert.deepEqual(job.schedule, { cron: yearly, timezone: "Europe/Paris" });
			assert.deepEqual(job.task, { terminalId: "api-term", type: "report", payload: { year: true }, priority: 3 });
			assert.equal(job.misfirePolicy, "fire_once");
			assert.equal(job.overlapPolicy, "forbid");
			assert.equal(job.catchUpWindow, 120);
			assert.equal(job.enabled, true);
			assert.equal(job.status, "active");
			assert.equal(job.createdBy, "admin");
			assert.equal(job.version, 1);
			assert.equal(job.startAt, null);
			assert.equal(job.endAt, null);
			assert.equal(job.pausedAt, null);
			// Five ISO strings: midnight of 1 January in Paris (23:00 UTC on 31 December), year after year.
			assert.equal(job.nextFireTimes.length, 5);
			const firstYear = new Date(ms(job.nextFireTimes[0])).getUTCFullYear();
			job.nextFireTimes.forEach((t, i) => {
				assert.match(t, ISO);
				assert.equal(t, `${firstYear + i}-12-31T23:00:00.000Z`);
			});
			assert.ok(ms(job.nextFireTimes[0]) > Date.now());
			assert.equal(await jobTotal(), before + 1);

			const list = await tern.api<{ rows: JobView[]; total: number }>("GET", "/api/jobs?name=api-crud");
			assert.equal(list.status, 200);
			assert.equal(list.body.total, 1);
			assert.equal(list.body.rows[0].id, job.id);
			assert.deepEqual((await tern.api("GET", "/api/jobs?enabled=false&name=api-crud")).body.rows, []);

			const got = await getJob(job.id);
			assert.deepEqual({ ...got, nextFireTimes: [] }, { ...job, nextFireTimes: [] });
			assert.deepEqual(got.nextFireTimes, job.nextFireTimes);

			// PUT: the fields given change, the others stay; the fire times follow the new schedule.
			const updated = await tern.api<JobView>("PUT", `/api/jobs/${job.id}`, {
				name: "api-crud-2",
				schedule: { cron: "30 6 * * 1" }
			});
			assert.equal(updated.status, 200, JSON.stringify(updated.body));
			assert.equal(updated.body.name, "api-crud-2");
			assert.deepEqual(updated.body.schedule, { cron: "30 6 * * 1" });
			assert.equal(updated.body.version, 2);
			assert.equal(updated.body.misfirePolicy, "fire_once");
			assert.deepEqual(updated.body.task, job.task);
			assert.equal(updated.body.nextFireTimes.length, 5);
			for (const [i, t] of updated.body.nextFireTimes.entries()) {
				const d = new Date(ms(t));
				assert.deepEqual([d.getUTCDay(), d.getUTCHours(), d.getUTCMinutes()], [1, 6, 30], t);
				if (i > 0) assert.equal(ms(t) - ms(updated.body.nextFireTimes[i - 1]), 7 * 86_400_000);
			}
			// A bad update changes nothing.
			assertError(
				await tern.api("PUT", `/api/jobs/${job.id}`, { name: "x", schedule: { cron: "* * *" } }),
				422,
				"VALIDATION_ERROR",
				/schedule\.cron/
			);
			const unchanged = await getJob(job.id);
			assert.equal(unchanged.name, "api-crud-2");
			assert.equal(unchanged.version, 2);

			const removed = await confirmed(`${tern.url}/api/jobs/${job.id}`, "DELETE", undefined, tern.adminToken);
			assert.equal(removed.status, 200);
			assert.deepEqual(removed.body, { id: job.id, removed: true });
			assertError(await tern.api("GET", `/api/jobs/${job.id}`), 404, "JOB_NOT_FOUND");
			assertError(await tern.api("GET", `/api/jobs/${job.id}/history`), 404, "JOB_NOT_FOUND");
			assert.equal(await jobTotal(), before);
		});

		it("lists jobs a page at a time, newest first unless sorted otherwise, and finds them by part of the name", async () => {
			const made: JobView[] = [];
			for (const name of ["list-b", "list-a", "list-c"])
				made.push(
					await createJob({ name, schedule: { cron: "0 0 1 1 *" }, task: { terminalId: "api-term", type: "t" } })
				);
			const reply = await tern.api("GET", "/api/jobs?search=LIST-&pageSize=2");
			assert.equal(reply.status, 200, JSON.stringify(reply.body));
			assert.deepEqual(Object.keys(reply.body).sort(), ["page", "pageSize", "rows", "total", "totalPages"]);
			assert.deepEqual(
				{
					total: reply.body.total,
					page: reply.body.page,
					pageSize: reply.body.pageSize,
					totalPages: reply.body.totalPages
				},
				{ total: 3, page: 1, pageSize: 2, totalPages: 2 }
			);
			assert.deepEqual(
				reply.body.rows.map((r: JobView) => r.name),
				["list-c", "list-a"]
			);
			// Rows are job views, as GET /api/jobs/:id answers them.
			assert.deepEqual(reply.body.rows[0], await getJob(made[2].id));
			const second = await tern.api("GET", "/api/jobs?search=list-&pageSize=2&page=2");
			assert.deepEqual(
				second.body.rows.map((r: JobView) => r.name),
				["list-b"]
			);
			const byName = await tern.api("GET", "/api/jobs?search=list-&sort=name");
			assert.deepEqual(
				byName.body.rows.map((r: JobView) => r.name),
				["list-a", "list-b", "list-c"]
			);
			assertError(await tern.api("GET", "/api/jobs?sort=task"), 422, "VALIDATION_ERROR");
			assertError(await tern.api("GET", "/api/jobs?pageSize=501"), 422, "VALIDATION_ERROR");
		});

		it("refuses invalid jobs with 422 naming the field, and creates nothing", async () => {
			const valid = { name: "api-bad", schedule: { every: 1000 }, task: { terminalId: "api-term", type: "t" } };
			const cases: { what: string; body: Record<string, unknown>; field?: string; message: RegExp }[] = [
				{
					what: "cron value out of range",
					body: { ...valid, schedule: { cron: "61 * * * *" } },
					field: "schedule.cron",
					message: /'schedule\.cron' '61 \* \* \* \*' is invalid: .*out of range/
				},
				{
					what: "cron with 4 fields",
					body: { ...valid, schedule: { cron: "* * * *" } },
					field: "schedule.cron",
					message: /'schedule\.cron' needs 5 fields .* has 4/
				},
				{
					what: "unknown time zone",
					body: { ...valid, schedule: { cron: "* * * * *", timezone: "Mars/Olympus_Mons" } },
					field: "schedule.timezone",
					message: /'schedule\.timezone' "Mars\/Olympus_Mons" is not a known IANA time zone/
				},
				{
					what: "every under 100 ms",
					body: { ...valid, schedule: { every: 99 } },
					field: "schedule.every",
					message: /'schedule\.every' .* at least 100/
				},
				{
					what: "two schedule kinds",
					body: { ...valid, schedule: { every: 1000, cron: "* * * * *" } },
					field: "schedule",
					message: /exactly one of cron, every, delayAfterFinish or at/
				},
				{
					what: "bad at",
					body: { ...valid, schedule: { at: "next tuesday" } },
					field: "schedule.at",
					message: /'schedule\.at' must be an ISO-8601 date-time; got "next tuesday"/
				},
				{
					what: "terminalId and selector",
					body: { ...valid, task: { terminalId: "api-term", selector: { labels: { a: "b" } }, type: "t" } },
					field: "task.terminalId",
					message: /'terminalId' or 'selector'/
				},
				{
					what: "an idempotencyKey in the task",
					body: { ...valid, task: { terminalId: "api-term", type: "t", idempotencyKey: "k-1" } },
					field: "task",
					message: /Unknown field\(s\) 'task\.idempotencyKey'/
				},
				{
					what: "endAt before startAt",
					body: { ...valid, startAt: "2031-06-02T00:00:00Z", endAt: "2031-06-01T00:00:00Z" },
					field: "endAt",
					message: /'endAt' must be after 'startAt'/
				},
				{
					what: "an unknown top-level field",
					body: { ...valid, colour: "red" },
					message: /Unknown field\(s\) 'colour'/
				}
			];
			const before = await jobTotal();
			for (const c of cases) {
				const reply = await tern.api("POST", "/api/jobs", c.body);
				assertError(reply, 422, "VALIDATION_ERROR", c.message);
				if (c.field)
					assert.ok(
						Array.isArray(reply.body.data) && reply.body.data.some((d: { field?: string }) => d.field === c.field),
						`${c.what}: names ${c.field} in ${JSON.stringify(reply.body.data)}`
					);
			}
			const unknownTerminal = await tern.api("POST", "/api/jobs", {
				...valid,
				task: { terminalId: "no-such-terminal", type: "t" }
			});
			assertError(unknownTerminal, 404, "TERMINAL_NOT_FOUND", /no-such-terminal/);
			assert.equal(await jobTotal(), before, "nothing created");
			assert.deepEqual((await tern.api("GET", "/api/jobs?name=api-bad")).body.rows, []);
		});

		it("answers an unknown job id with 404 JOB_NOT_FOUND on every route", async () => {
			const routes: [string, string, unknown?][] = [
				["GET", ""],
				["PUT", "", { name: "x" }],
				["DELETE", ""],
				["POST", "/execute"],
				["POST", "/cancel"],
				["POST", "/pause"],
				["POST", "/resume"],
				["GET", "/history"]
			];
			for (const [method, suffix, body] of routes)
				assertError(await tern.api(method, `/api/jobs/no-such-job${suffix}`, body), 404, "JOB_NOT_FOUND", /no-such-job/);
		});
	});

	// ------------------------------------------------------------------ firing

	describe("firing", () => {
		it("fires a cron job with seconds every second to an online terminal; the ledger follows each task to its end", async () => {
			const terminal = await onlineTerminal("fire-cron");
			answerAll(terminal);
			const job = await createJob({
				name: "every-second",
				schedule: { cron: "* * * * * *" },
				task: { terminalId: "fire-cron", type: "tick", payload: { from: "cron" } }
			});
			assert.equal(job.nextFireTimes.length, 5);
			job.nextFireTimes.forEach((t, i) => {
				assert.equal(ms(t) % 1000, 0, "on whole seconds");
				if (i > 0) assert.equal(ms(t) - ms(job.nextFireTimes[i - 1]), 1000);
			});

			const rows = await waitForLedger(
				job.id,
				rows => fired(rows).filter(r => r.finishedAt !== null).length >= 3,
				"three finished fires"
			);
			assert.ok(
				rows.every(r => r.outcome === "FIRED"),
				outcomes(rows)
			);
			assertNoGaps(rows, 1000);
			assert.equal(rows[0].fireTime, job.nextFireTimes[0], "the first fire is the first announced");
			for (const row of rows.filter(r => r.finishedAt !== null)) {
				assert.equal(row.jobId, job.id);
				assert.equal(row.manual, false);
				assert.equal(ms(row.fireTime) % 1000, 0);
				assert.ok(row.lateness !== null && row.lateness >= 0 && row.lateness < 1000, `lateness ${row.lateness}`);
				assert.equal(row.lateness, ms(row.firedAt) - ms(row.fireTime));
				assert.deepEqual(row.taskIds, [row.taskId]);
				const task = terminal.tasks.find(t => t.taskId === row.taskId);
				assert.ok(task, `task ${row.taskId} reached the terminal`);
				assert.equal(task.type, "tick");
				assert.deepEqual(task.payload, { from: "cron" });
				const view = (await tern.api<TaskView>("GET", `/api/tasks/${row.taskId}`)).body;
				assert.equal(view.status, "COMPLETED");
				assert.equal(view.terminalId, "fire-cron");
				assert.equal(view.idempotencyKey, `job:${job.id}:${ms(row.fireTime)}`);
				assert.ok(ms(row.finishedAt) >= ms(view.finishedAt), "finishedAt once the task ended");
				assert.ok(ms(row.finishedAt) >= ms(row.firedAt));
			}
			// One task per fire, never two.
			const ids = rows.map(r => r.taskId);
			assert.equal(new Set(ids).size, ids.length);
			terminal.close();
		});

		it("fires `every` at anchor + k·every: exactly the fire times the job announced", async () => {
			const terminal = await onlineTerminal("fire-every");
			answerAll(terminal);
			const job = await createJob({
				name: "every-300",
				schedule: { every: 300 },
				task: { terminalId: "fire-every", type: "beat" }
			});
			const anchor = ms(job.createdAt);
			assert.deepEqual(
				job.nextFireTimes.map(t => ms(t) - anchor),
				[300, 600, 900, 1200, 1500]
			);
			const rows = await waitForLedger(job.id, rows => fired(rows).length >= 5, "five fires");
			assert.ok(
				rows.every(r => r.outcome === "FIRED"),
				outcomes(rows)
			);
			assert.deepEqual(
				rows.slice(0, 5).map(r => r.fireTime),
				job.nextFireTimes,
				"fires at the announced times, none before"
			);
			for (const row of rows) {
				assert.equal((ms(row.fireTime) - anchor) % 300, 0);
				assert.ok(row.lateness! >= 0 && row.lateness! < 1000, `lateness ${row.lateness}`);
			}
			assertNoGaps(rows, 300);
			terminal.close();
		});

		it("fires `at` once, then the job has ended with no next fire times", async () => {
			const terminal = await onlineTerminal("fire-at");
			const at = new Date(Date.now() + 800).toISOString();
			const job = await createJob({
				name: "one-shot",
				schedule: { at },
				task: { terminalId: "fire-at", type: "once", payload: 1 }
			});
			assert.deepEqual(job.nextFireTimes, [at]);
			assert.equal(job.status, "active");
			const rows = await waitForLedger(job.id, rows => rows.length > 0 && rows[0].outcome !== "CLAIMED", "the fire");
			assert.equal(rows.length, 1);
			assert.equal(rows[0].outcome, "FIRED");
			assert.equal(rows[0].fireTime, at);
			assert.ok(ms(rows[0].firedAt) >= ms(at));
			const task = await terminal.nextTask();
			assert.equal(task.taskId, rows[0].taskId);
			assert.equal(task.type, "once");

			const ended = await getJob(job.id);
			assert.equal(ended.status, "ended");
			assert.deepEqual(ended.nextFireTimes, []);
			assert.equal(ended.enabled, true);
			assert.equal((await ledger(job.id)).length, 1, "fired once");
			assert.equal(terminal.tasks.length, 1);
			terminal.close();
		});

		it("does not fire before startAt, and fires from it at startAt + k·every", async () => {
			const terminal = await onlineTerminal("fire-start");
			answerAll(terminal);
			const startAt = Date.now() + 1500;
			const job = await createJob({
				name: "starts-later",
				schedule: { every: 200 },
				startAt: new Date(startAt).toISOString(),
				task: { terminalId: "fire-start", type: "late" }
			});
			assert.equal(job.startAt, new Date(startAt).toISOString());
			assert.deepEqual(
				job.nextFireTimes.map(t => ms(t) - startAt),
				[0, 200, 400, 600, 800]
			);
			const rows = await waitForLedger(job.id, rows => fired(rows).length >= 3, "three fires");
			assert.equal(ms(rows[0].fireTime), startAt, "the first fire is at startAt");
			assertNoGaps(rows, 200);
			for (const row of rows) {
				assert.ok(ms(row.fireTime) >= startAt);
				if (row.firedAt) assert.ok(ms(row.firedAt) >= startAt, `fired at ${row.firedAt}, before startAt`);
			}
			for (const task of terminal.tasks) assert.ok(Date.parse(task.createdAt) >= startAt, "no task before startAt");
			terminal.close();
		});

		it("stops at endAt: the last fire is the last fire time not after it, then the job has ended", async () => {
			await tern.registerTerminal("fire-end");
			const endAt = Date.now() + 1000;
			const job = await createJob({
				name: "ends-soon",
				schedule: { every: 200 },
				endAt: new Date(endAt).toISOString(),
				task: { terminalId: "fire-end", type: "t" }
			});
			const anchor = ms(job.createdAt);
			const expected: number[] = [];
			for (let t = anchor + 200; t <= endAt; t += 200) expected.push(t);
			assert.deepEqual(job.nextFireTimes.map(ms), expected.slice(0, 5));
			await waitFor(
				async () => (await getJob(job.id)).status === "ended",
				5000,
				() => "the job to end"
			);
			const rows = await waitForLedger(
				job.id,
				rows => rows.length > 0 && rows.every(r => r.outcome !== "CLAIMED") && ms(rows.at(-1)!.fireTime) + 200 > endAt,
				"the last fire before endAt"
			);
			assert.deepEqual(
				rows.map(r => ms(r.fireTime)),
				expected
			);
			assert.ok(
				rows.every(r => r.outcome === "FIRED"),
				outcomes(rows)
			);
			assert.deepEqual((await getJob(job.id)).nextFireTimes, []);
		});

		it("delayAfterFinish: each fire comes `delay` after the previous run's task finished, never before", async () => {
			const terminal = await onlineTerminal("fire-delay");
			const resultSentAt = answerAll(terminal, 600);
			const taskArrivedAt = new Map<string, number>();
			terminal.socket.on("task", (task: TaskPush) => taskArrivedAt.set(task.taskId, Date.now()));
			const job = await createJob({
				name: "after-finish",
				schedule: { delayAfterFinish: 400 },
				task: { terminalId: "fire-delay", type: "chain" }
			});
			const rows = await waitForLedger(
				job.id,
				rows => rows.length >= 3 && rows.slice(0, 3).every(r => r.finishedAt !== null),
				"three finished runs",
				10_000
			);
			assert.ok(
				rows.every(r => r.outcome === "FIRED"),
				outcomes(rows)
			);
			for (let i = 1; i < 3; i++) {
				const previous = rows[i - 1];
				const sent = resultSentAt.get(previous.taskId!)!;
				const next = ms(rows[i].fireTime);
				assert.equal(next, ms(previous.finishedAt) + 400, "delay counted from the end of the previous run");
				assert.ok(next - sent >= 400, `next fire ${next - sent} ms after the result`);
				assert.ok(taskArrivedAt.get(rows[i].taskId!)! - sent >= 400, "the next task arrived delay ms after the result");
			}
			// Never two runs at once: the terminal held one task at a time.
			assert.deepEqual(
				terminal.tasks.slice(0, 3).map(t => t.taskId),
				rows.slice(0, 3).map(r => r.taskId)
			);
			terminal.close();
		});
	});

	// ------------------------------------------------------------------ overlap

	describe("overlap policies", () => {
		it("forbid: while the run is unfinished, later fire times are SKIPPED_OVERLAP and no second task is created", async () => {
			const terminal = await onlineTerminal("ovl-forbid"); // never answers
			const job = await createJob({
				name: "forbid",
				schedule: { every: 300 },
				overlapPolicy: "forbid",
				task: { terminalId: "ovl-forbid", type: "slow" }
			});
			const rows = await waitForLedger(
				job.id,
				rows => rows.filter(r => r.outcome === "SKIPPED_OVERLAP").length >= 3,
				"three skipped fires"
			);
			assertNoGaps(rows, 300);
			assert.equal(rows[0].outcome, "FIRED");
			const first = rows[0].taskId!;
			for (const row of rows.slice(1)) {
				if (row.outcome === "CLAIMED") continue;
				assert.equal(row.outcome, "SKIPPED_OVERLAP");
				assert.equal(row.taskId, null);
				assert.deepEqual(row.taskIds, []);
				assert.equal(row.lateness, null);
				assert.match(row.detail ?? "", new RegExp(`previous run \\(${first}\\) is still running`));
			}
			assert.deepEqual(
				terminal.tasks.map(t => t.taskId),
				[first]
			);
			const tasks = (await tern.api<{ total: number }>("GET", "/api/tasks?terminalId=ovl-forbid")).body;
			assert.equal(tasks.total, 1, "no second task");
			terminal.close();
		});

		it("replace: each fire cancels the previous run's task and creates a new one", async () => {
			const terminal = await onlineTerminal("ovl-replace", {}, 10); // never answers
			const job = await createJob({
				name: "replace",
				schedule: { every: 300 },
				overlapPolicy: "replace",
				task: { terminalId: "ovl-replace", type: "slow" }
			});
			const rows = await waitForLedger(job.id, rows => fired(rows).length >= 3, "three fires");
			const runs = fired(rows);
			assert.ok(
				rows.every(r => r.outcome === "FIRED" || r.outcome === "CLAIMED"),
				outcomes(rows)
			);
			for (let i = 1; i < runs.length; i++) {
				const previous = runs[i - 1].taskId!;
				assert.notEqual(runs[i].taskId, previous, "a new task");
				assert.match(runs[i].detail ?? "", new RegExp(`replaced the previous run \\(${previous}\\)`));
				assert.equal((await tern.query(previous)).status, "CANCELLED");
				await waitFor(
					() => terminal.cancels.some(c => c.taskId === previous && c.reason === "cancelled"),
					5000,
					() => `the terminal to be told to stop ${previous}`
				);
			}
			assert.notEqual((await tern.query(runs.at(-1)!.taskId!)).status, "CANCELLED");
			terminal.close();
		});

		it("allow: fires regardless, several runs in flight at once", async () => {
			const terminal = await onlineTerminal("ovl-allow", {}, 10); // never answers
			const job = await createJob({
				name: "allow",
				schedule: { every: 300 },
				overlapPolicy: "allow",
				task: { terminalId: "ovl-allow", type: "slow" }
			});
			const rows = await waitForLedger(job.id, rows => fired(rows).length >= 3, "three fires");
			const runs = fired(rows).slice(0, 3);
			assertNoGaps(rows, 300);
			await waitFor(
				() => runs.every(r => terminal.tasks.some(t => t.taskId === r.taskId)),
				5000,
				() => "three tasks held"
			);
			for (const run of runs) {
				assert.equal(run.detail, null);
				assert.equal((await tern.query(run.taskId!)).status, "DELIVERED", "still in flight");
			}
			assert.equal(new Set(runs.map(r => r.taskId)).size, 3);
			terminal.close();
		});
	});

	// ------------------------------------------------------------------ run now, cancel

	describe("run now and cancel", () => {
		it("execute creates a task at once (a manual ledger row) and leaves the schedule as it was", async () => {
			const terminal = await onlineTerminal("now-term");
			answerAll(terminal);
			const job = await createJob({
				name: "run-now",
				schedule: { every: 700 },
				task: { terminalId: "now-term", type: "now", payload: { x: 1 } }
			});
			const anchor = ms(job.createdAt);
			await waitForLedger(job.id, rows => fired(rows).length >= 1, "a scheduled fire");

			const before = Date.now();
			const run = await tern.api("POST", `/api/jobs/${job.id}/execute`);
			assert.equal(run.status, 200, JSON.stringify(run.body));
			assert.equal(run.body.jobId, job.id);
			assert.equal(typeof run.body.taskId, "string");
			assert.deepEqual(run.body.taskIds, [run.body.taskId]);
			assert.ok(ms(run.body.fireTime) >= before && ms(run.body.fireTime) <= Date.now());
			await waitFor(
				() => terminal.tasks.some(t => t.taskId === run.body.taskId),
				2000,
				() => "the task at the terminal"
			);
			const task = terminal.tasks.find(t => t.taskId === run.body.taskId)!;
			assert.equal(task.type, "now");
			assert.deepEqual(task.payload, { x: 1 });
			await tern.waitForStatus(run.body.taskId, "COMPLETED");

			const rows = await waitForLedger(job.id, rows => fired(rows).length >= 4, "three more scheduled fires");
			const manual = rows.filter(r => r.manual);
			assert.equal(manual.length, 1);
			assert.equal(manual[0].outcome, "FIRED");
			assert.equal(manual[0].fireTime, run.body.fireTime);
			assert.equal(manual[0].taskId, run.body.taskId);
			assert.equal(manual[0].detail, "run now");
			// The scheduled fires go on at anchor + k·700, none missing, none moved.
			const scheduled = rows.filter(r => !r.manual);
			assert.ok(
				scheduled.every(r => r.outcome === "FIRED"),
				outcomes(scheduled)
			);
			assertNoGaps(scheduled, 700);
			assert.equal(ms(scheduled[0].fireTime), anchor + 700);
			const view = await getJob(job.id);
			for (const t of view.nextFireTimes) assert.equal((ms(t) - anchor) % 700, 0);
			terminal.close();
		});

		it("cancel cancels the running instance's task", async () => {
			const terminal = await onlineTerminal("cancel-term"); // never answers
			const job = await createJob({
				name: "cancel-me",
				schedule: { cron: "0 0 1 1 *" },
				task: { terminalId: "cancel-term", type: "long" }
			});
			const run = await tern.api("POST", `/api/jobs/${job.id}/execute`);
			assert.equal(run.status, 200);
			const task = await terminal.nextTask();
			assert.equal(task.taskId, run.body.taskId);
			await terminal.ack(task);

			const cancel = await tern.api("POST", `/api/jobs/${job.id}/cancel`);
			assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
			assert.deepEqual(cancel.body, { jobId: job.id, cancelled: [task.taskId] });
			assert.equal((await tern.query(task.taskId)).status, "CANCELLED");
			await waitFor(() => terminal.cancels.some(c => c.taskId === task.taskId && c.reason === "cancelled"));
			const [row] = await waitForLedger(job.id, rows => rows[0]?.finishedAt != null, "the run to be finished");
			assert.equal(row.manual, true);
			assert.equal(row.taskId, task.taskId);

			// Nothing left to cancel.
			assert.deepEqual((await tern.api("POST", `/api/jobs/${job.id}/cancel`)).body, { jobId: job.id, cancelled: [] });
			terminal.close();
		});
	});

	// ------------------------------------------------------------------ fan-out

	describe("fan-out", () => {
		it("a sharding job creates one task per online matching terminal per fire, shards 0..2 of 3", async () => {
			const terminals: TestTerminal[] = [];
			for (const id of ["shard-a", "shard-b", "shard-c"])
				terminals.push(await onlineTerminal(id, { labels: { pool: "shard-pool" } }));
			for (const terminal of terminals) answerAll(terminal);
			const job = await createJob({
				name: "sharded",
				schedule: { every: 500 },
				task: { selector: { labels: { pool: "shard-pool" }, strategy: "sharding" }, type: "part" }
			});
			const rows = await waitForLedger(job.id, rows => fired(rows).length >= 2, "two fires");
			for (const row of fired(rows).slice(0, 2)) {
				assert.equal(row.taskIds.length, 3);
				assert.equal(row.taskId, row.taskIds[0]);
				const views = await Promise.all(
					row.taskIds.map(async id => (await tern.api<TaskView>("GET", `/api/tasks/${id}`)).body)
				);
				assert.deepEqual(views.map(v => v.shardIndex).sort(), [0, 1, 2]);
				assert.ok(views.every(v => v.shardTotal === 3));
				assert.equal(new Set(views.map(v => v.groupId)).size, 1);
				assert.deepEqual(views.map(v => v.terminalId).sort(), ["shard-a", "shard-b", "shard-c"]);
				await waitFor(() =>
					row.taskIds.every(id => terminals.some(terminal => terminal.tasks.some(t => t.taskId === id)))
				);
				const pushes = terminals.map(terminal => terminal.tasks.find(t => row.taskIds.includes(t.taskId))!);
				assert.deepEqual(pushes.map(p => p.shardIndex).sort(), [0, 1, 2], "each terminal its own shard");
				assert.ok(pushes.every(p => p.shardTotal === 3 && p.type === "part"));
			}
			for (const terminal of terminals) terminal.close();
		});

		it("a broadcast job whose selector matches no terminal records NO_TERMINAL with the reason", async () => {
			const job = await createJob({
				name: "nobody",
				schedule: { every: 300 },
				task: { selector: { labels: { pool: "nobody-here" }, strategy: "broadcast" }, type: "t" }
			});
			const rows = await waitForLedger(
				job.id,
				rows => rows.filter(r => r.outcome === "NO_TERMINAL").length >= 2,
				"two NO_TERMINAL fires"
			);
			for (const row of rows.filter(r => r.outcome !== "CLAIMED")) {
				assert.equal(row.outcome, "NO_TERMINAL");
				assert.match(row.detail ?? "", /No registered terminal matches the selector/);
				assert.deepEqual(row.taskIds, []);
				assert.equal(row.taskId, null);
			}
			assertNoGaps(rows, 300);
			// Run now goes the single-fire way (claim, submit, settle): the same outcome.
			const run = await tern.api("POST", `/api/jobs/${job.id}/execute`);
			assert.equal(run.status, 200, JSON.stringify(run.body));
			assert.deepEqual(run.body.taskIds, []);
			const manual = (await ledger(job.id)).find(r => r.manual);
			assert.equal(manual?.outcome, "NO_TERMINAL", outcomes(await ledger(job.id)));
			assert.match(manual?.detail ?? "", /No registered terminal matches the selector/);
		});

		// The dispatcher refuses a selector no registered terminal matches with 422
		// NO_MATCHING_TERMINAL for every strategy (design §3), not only broadcast and sharding.
		it("a round_robin job whose selector matches no registered terminal records NO_TERMINAL, not FIRED", async () => {
			const job = await createJob({
				name: "nobody-rr",
				schedule: { every: 300 },
				task: { selector: { labels: { pool: "nobody-rr" }, strategy: "round_robin" }, type: "t" }
			});
			const rows = await waitForLedger(
				job.id,
				rows => rows.filter(r => r.outcome !== "CLAIMED").length >= 2,
				"two settled fires"
			);
			for (const row of rows.filter(r => r.outcome !== "CLAIMED")) {
				assert.equal(row.outcome, "NO_TERMINAL", outcomes(rows));
				assert.match(row.detail ?? "", /No registered terminal matches the selector/);
				assert.deepEqual(row.taskIds, []);
			}
		});
	});

	// ------------------------------------------------------------------ events

	describe("events", () => {
		it("broadcasts job.fire for each fire with its outcome and lateness", async () => {
			const events: FireEvent[] = [];
			const listener: Service = tern.broker.createService({
				name: "fire-listener",
				events: {
					"job.fire"(ctx: Context<FireEvent>) {
						events.push(ctx.params);
					}
				}
			});
			try {
				await tern.broker.waitForServices("fire-listener");
				await tern.registerTerminal("event-term");
				const job = await createJob({
					name: "evented",
					schedule: { every: 300 },
					task: { terminalId: "event-term", type: "t" }
				});
				const nobody = await createJob({
					name: "evented-nobody",
					schedule: { every: 300 },
					task: { selector: { labels: { pool: "no-one" }, strategy: "broadcast" }, type: "t" }
				});
				await waitFor(
					() => events.filter(e => e.jobId === job.id).length >= 2 && events.some(e => e.jobId === nobody.id),
					5000,
					() => `job.fire events (have ${JSON.stringify(events)})`
				);
				const rows = await ledger(job.id);
				for (const event of events.filter(e => e.jobId === job.id)) {
					assert.equal(event.outcome, "FIRED");
					assert.equal(event.manual, false);
					assert.equal(event.node, tern.broker.nodeID);
					assert.equal(event.detail, null);
					const row = rows.find(r => r.fireTime === event.fireTime);
					assert.ok(row, `a ledger row for ${event.fireTime}`);
					assert.equal(event.lateness, row.lateness, "lateness as the ledger has it");
					assert.ok(event.lateness! >= 0 && event.lateness! < 1000);
					assert.deepEqual(event.taskIds, row.taskIds);
				}
				const missed = events.find(e => e.jobId === nobody.id)!;
				assert.equal(missed.outcome, "NO_TERMINAL");
				assert.equal(missed.lateness, null);
				assert.deepEqual(missed.taskIds, []);
				assert.match(missed.detail ?? "", /No registered terminal/);
			} finally {
				await tern.broker.destroyService(listener);
			}
		});
	});

	// ------------------------------------------------------------------ roles

	describe("roles", () => {
		const tokens: Record<string, string> = {};

		before(async () => {
			await tern.registerTerminal("role-term");
			for (const [username, role] of [
				["job-op-a", "operator"],
				["job-op-b", "operator"],
				["job-viewer", "viewer"]
			]) {
				const created = await tern.api("POST", "/api/users", { username, password: `${username}-pass-1`, role });
				assert.equal(created.status, 201, JSON.stringify(created.body));
				const login = await tern.api("POST", "/api/auth/login", { username, password: `${username}-pass-1` }, null);
				assert.equal(login.status, 200);
				tokens[username] = login.body.token;
			}
		});

		const body = (name: string) => ({
			name,
			schedule: { cron: "0 0 1 1 *" },
			task: { terminalId: "role-term", type: "t" }
		});

		it("an operator creates and manages their own jobs, and gets 403 on another operator's", async () => {
			const a = tokens["job-op-a"];
			const b = tokens["job-op-b"];
			const job = await createJob(body("op-a-job"), a);
			assert.equal(job.createdBy, "job-op-a");

			assert.equal((await tern.api("PUT", `/api/jobs/${job.id}`, { name: "op-a-job-2" }, a)).status, 200);
			assert.equal((await tern.api("POST", `/api/jobs/${job.id}/pause`, undefined, a)).body.status, "paused");
			assert.equal((await tern.api("POST", `/api/jobs/${job.id}/resume`, undefined, a)).body.status, "active");
			assert.equal((await tern.api("POST", `/api/jobs/${job.id}/execute`, undefined, a)).status, 200);
			assert.equal((await tern.api("POST", `/api/jobs/${job.id}/cancel`, undefined, a)).status, 200);

			const versionBefore = (await getJob(job.id)).version;
			for (const [method, suffix, payload] of [
				["PUT", "", { name: "stolen" }],
				["DELETE", ""],
				["POST", "/execute"],
				["POST", "/cancel"],
				["POST", "/pause"],
				["POST", "/resume"]
			] as [string, string, unknown?][])
				assertError(
					await tern.api(method, `/api/jobs/${job.id}${suffix}`, payload, b),
					403,
					"FORBIDDEN",
					/belongs to 'job-op-a'/
				);
			const after = await getJob(job.id);
			assert.equal(after.name, "op-a-job-2");
			assert.equal(after.version, versionBefore, "untouched");
			assert.equal((await ledger(job.id)).length, 1, "only a's run");
			// Reading is open to every role.
			assert.equal((await tern.api("GET", `/api/jobs/${job.id}`, undefined, b)).status, 200);
			assert.equal((await tern.api("GET", `/api/jobs/${job.id}/history`, undefined, b)).status, 200);
			// The admin manages anyone's.
			assert.equal((await tern.api("POST", `/api/jobs/${job.id}/pause`)).body.status, "paused");
			assert.equal((await confirmed(`${tern.url}/api/jobs/${job.id}`, "DELETE", undefined, a)).status, 200);
		});

		it("a viewer reads jobs and their history but cannot create or change one", async () => {
			const v = tokens["job-viewer"];
			const job = await createJob(body("viewed-job"));
			const before = await jobTotal();
			assertError(await tern.api("POST", "/api/jobs", body("viewer-job"), v), 403, "FORBIDDEN");
			assert.equal(await jobTotal(), before);
			for (const [method, suffix, payload] of [
				["PUT", "", { name: "x" }],
				["DELETE", ""],
				["POST", "/execute"],
				["POST", "/cancel"],
				["POST", "/pause"],
				["POST", "/resume"]
			] as [string, string, unknown?][])
				assertError(await tern.api(method, `/api/jobs/${job.id}${suffix}`, payload, v), 403, "FORBIDDEN");

			const list = await tern.api("GET", "/api/jobs?name=viewed-job", undefined, v);
			assert.equal(list.status, 200);
			assert.equal(list.body.total, 1);
			const got = await tern.api("GET", `/api/jobs/${job.id}`, undefined, v);
			assert.equal(got.status, 200);
			assert.equal(got.body.version, 1, "untouched");
			assert.equal((await tern.api("GET", `/api/jobs/${job.id}/history`, undefined, v)).status, 200);
			assert.deepEqual(await ledger(job.id), []);
		});
	});
});

// ---------------------------------------------------------------------- MariaDB

// The store's statements have a MySQL form apiece (INSERT IGNORE, the CASE update of a batch):
// the same jobs on MariaDB.
describe("scheduler on MariaDB", { skip: needs("mariadb") }, () => {
	let db: TestDatabase;
	let tern: TestTern;
	const jobs = jobsClient(() => tern);
	const { createJob, getJob, waitForLedger, fired } = jobs;

	before(async () => {
		db = await TestDatabase.create("tern_sched");
		tern = await TestTern.start({ dbUri: db.uri });
	});
	after(async () => {
		await tern?.close();
		await db.drop();
	});

	it("creates, lists, changes and removes jobs; batched, forbid, delay-after-finish and refused fires reach the ledger", async () => {
		const token = await tern.registerTerminal("maria-term");
		const terminal = await tern.connectTerminal("maria-term", token, { concurrency: 10 });
		answerAll(terminal);
		const task = { terminalId: "maria-term", type: "m" };
		const plain = await Promise.all(
			["maria-a", "maria-b", "maria-c"].map(name => createJob({ name, schedule: { every: 300 }, task }))
		);
		const forbid = await createJob({ name: "maria-forbid", schedule: { every: 300 }, overlapPolicy: "forbid", task });
		const chain = await createJob({ name: "maria-chain", schedule: { delayAfterFinish: 200 }, task });
		const nobody = await createJob({
			name: "maria-nobody",
			schedule: { every: 300 },
			task: { selector: { labels: { pool: "nobody" }, strategy: "broadcast" }, type: "m" }
		});

		for (const job of plain) {
			const rows = await waitForLedger(job.id, rows => fired(rows).length >= 3, "three fires");
			assertNoGaps(rows, 300);
		}
		await waitForLedger(forbid.id, rows => fired(rows).length >= 2, "forbid to fire twice");
		const runs = await waitForLedger(
			chain.id,
			rows => rows.filter(r => r.finishedAt !== null).length >= 2,
			"two finished delay-after-finish runs"
		);
		assert.equal(ms(runs[1].fireTime), ms(runs[0].finishedAt) + 200);
		const refused = await waitForLedger(nobody.id, rows => rows.some(r => r.outcome === "NO_TERMINAL"), "NO_TERMINAL");
		assert.ok(refused.every(r => r.outcome === "NO_TERMINAL" || r.outcome === "CLAIMED"));

		const list = await tern.api("GET", "/api/jobs?search=maria-&sort=-name&pageSize=2&page=2");
		assert.equal(list.status, 200, JSON.stringify(list.body));
		assert.deepEqual(
			{ total: list.body.total, totalPages: list.body.totalPages, names: list.body.rows.map((r: JobView) => r.name) },
			{ total: 6, totalPages: 3, names: ["maria-chain", "maria-c"] }
		);
		const history = await tern.api("GET", `/api/jobs/${plain[0].id}/history?outcome=FIRED&pageSize=2`);
		assert.equal(history.body.rows.length, 2);
		assert.ok(history.body.total >= 3);

		const changed = await tern.api<JobView>("PUT", `/api/jobs/${plain[0].id}`, { name: "maria-a-2", enabled: false });
		assert.equal(changed.status, 200, JSON.stringify(changed.body));
		assert.deepEqual([changed.body.name, changed.body.enabled, changed.body.version], ["maria-a-2", false, 2]);
		assert.equal((await getJob(plain[0].id)).status, "paused");
		await jobs.removeAll();
		assert.equal((await tern.api("GET", `/api/jobs/${plain[0].id}`)).status, 404);
		assert.deepEqual((await tern.api("GET", "/api/jobs?search=maria-")).body.rows, []);
		assert.equal((await tern.api("GET", `/api/jobs/${forbid.id}/history`)).status, 404);
		terminal.close();
	});
});

// ---------------------------------------------------------------------- lost broadcasts

/**
 * Drops every `task.statuses` on its way to the scheduler, as a lost broadcast would be (the
 * broker's delivery of events to local services, wrapped as a middleware would). Answers how
 * many were dropped.
 */
function dropTaskStatuses(broker: ServiceBroker): () => number {
	const catalog = (broker.registry as unknown as { events: { callEventHandler(ctx: Context): Promise<unknown> } }).events;
	const deliver = catalog.callEventHandler.bind(catalog);
	let dropped = 0;
	catalog.callEventHandler = ctx => {
		if (ctx.eventName === "task.statuses" && ctx.service?.name === "scheduler") {
			dropped++;
			return Promise.resolve();
		}
		return deliver(ctx);
	};
	return () => dropped;
}

describe("scheduler without task.statuses: run ends read from the tasks table", () => {
	let tern: TestTern;
	const jobs = jobsClient(() => tern);
	const { createJob, waitForLedger, fired } = jobs;
	let dropped: () => number;

	before(async () => {
		tern = await TestTern.start({ settings: { scheduler: { completionCheckInterval: 200 } } });
		dropped = dropTaskStatuses(tern.broker);
	});
	afterEach(() => jobs.removeAll());
	after(() => tern.close());

	async function answeringTerminal(id: string) {
		const token = await tern.registerTerminal(id);
		const terminal = await tern.connectTerminal(id, token);
		answerAll(terminal);
		return terminal;
	}

	it("delayAfterFinish re-arms after each run though no status event reaches the scheduler", async () => {
		const terminal = await answeringTerminal("lost-delay");
		const job = await createJob({
			name: "lost-delay",
			schedule: { delayAfterFinish: 200 },
			task: { terminalId: "lost-delay", type: "chain" }
		});
		const rows = await waitForLedger(
			job.id,
			rows => rows.length >= 3 && rows.slice(0, 3).every(r => r.finishedAt !== null),
			"three finished runs"
		);
		assert.ok(dropped() >= 3, `status events dropped: ${dropped()}`);
		for (let i = 1; i < 3; i++) {
			assert.equal(rows[i].outcome, "FIRED");
			assert.equal(ms(rows[i].fireTime), ms(rows[i - 1].finishedAt) + 200, "delay counted from the run's end");
			assert.equal((await tern.query(rows[i - 1].taskId!)).status, "COMPLETED");
		}
		terminal.close();
	});

	it("forbid fires again once the previous run's task is COMPLETED in the tasks table", async () => {
		const terminal = await answeringTerminal("lost-forbid");
		const job = await createJob({
			name: "lost-forbid",
			schedule: { every: 300 },
			overlapPolicy: "forbid",
			task: { terminalId: "lost-forbid", type: "quick" }
		});
		const rows = await waitForLedger(job.id, rows => fired(rows).length >= 3, "three fires");
		const runs = fired(rows);
		assert.equal(new Set(runs.map(r => r.taskId)).size, runs.length, "a new task each run");
		for (const run of runs.slice(0, -1)) {
			assert.notEqual(run.finishedAt, null, `run ${run.fireTime} ended`);
			assert.equal((await tern.query(run.taskId!)).status, "COMPLETED");
		}
		assert.ok(dropped() > 0);
		terminal.close();
	});
});

// ---------------------------------------------------------------------- misfires

/** Moves jobs and their ledger `by` ms into the past, in a stopped node's SQLite database. */
async function shiftIntoPast(dataDir: string, jobIds: string[], by: number): Promise<void> {
	const db = new Sequelize({ dialect: "sqlite", storage: join(dataDir, "tern.sqlite"), logging: false });
	const ids = jobIds.map((_, i) => `$${i + 2}`).join(", ");
	try {
		await db.query(`UPDATE jobs SET createdAt = createdAt - $1, updatedAt = updatedAt - $1 WHERE id IN (${ids})`, {
			bind: [by, ...jobIds]
		});
		await db.query(
			"UPDATE job_fires SET fireTime = fireTime - $1, claimedAt = claimedAt - $1, firedAt = firedAt - $1, " +
				`finishedAt = finishedAt - $1 WHERE jobId IN (${ids})`,
			{ bind: [by, ...jobIds] }
		);
	} finally {
		await db.close();
	}
}

describe("scheduler misfires", () => {
	// Fire times later than 200 ms are misfires: paused-over and down-time fire times are old enough.
	const THRESHOLD = 200;
	const settings = { scheduler: { misfireThreshold: THRESHOLD } };
	let tern: TestTern;
	const jobs = jobsClient(() => tern);
	const { createJob, getJob, ledger, waitForLedger, fired } = jobs;

	before(async () => {
		tern = await TestTern.start({ settings });
		await tern.registerTerminal("misfire-term"); // offline: tasks wait PENDING, which is all these need
	});
	afterEach(() => jobs.removeAll());
	after(() => tern.close());

	const task = { terminalId: "misfire-term", type: "t" };

	/**
	 * Pauses a job right after one of its fires, keeps it paused while a control job fires four
	 * times, resumes it, and returns what the ledger says about the paused-over fire times.
	 */
	async function pauseAndResume(policy: "skip" | "fire_once" | "catch_up") {
		const control = await createJob({ name: `control-${policy}`, schedule: { every: 300 }, task });
		const job = await createJob({
			name: `paused-${policy}`,
			schedule: { every: 300 },
			misfirePolicy: policy,
			catchUpWindow: 60,
			task
		});
		const seen = fired(await waitForLedger(job.id, rows => fired(rows).length >= 2, "two fires")).length;
		// Just after a fire, the next one 300 ms away: the pause lands well between two fire times.
		await waitForLedger(job.id, rows => fired(rows).length > seen, "one more fire", 2000);
		const paused = await tern.api<JobView>("POST", `/api/jobs/${job.id}/pause`);
		assert.equal(paused.status, 200);
		assert.equal(paused.body.status, "paused");
		assert.equal(paused.body.enabled, false);
		assert.deepEqual(paused.body.nextFireTimes, []);
		const pausedAt = ms(paused.body.pausedAt);

		// The scheduler goes on firing other jobs meanwhile.
		const controlFires = fired(await ledger(control.id)).length;
		await waitForLedger(control.id, rows => fired(rows).length >= controlFires + 4, "the control job to fire 4 times");
		assert.equal((await getJob(job.id)).status, "paused");

		const resumeSentAt = Date.now();
		const resumed = await tern.api<JobView>("POST", `/api/jobs/${job.id}/resume`);
		const resumeDoneAt = Date.now();
		assert.equal(resumed.status, 200);
		assert.equal(resumed.body.status, "active");
		assert.equal(resumed.body.nextFireTimes.length, 5);
		assert.ok(ms(resumed.body.nextFireTimes[0]) >= resumeSentAt, "the next fire time is after the resume");

		const rows = await waitForLedger(
			job.id,
			rows => fired(rows).some(r => ms(r.fireTime) >= pausedAt),
			"a fire after the resume"
		);
		assertNoGaps(rows, 300);
		const before = rows.filter(r => ms(r.fireTime) < pausedAt);
		for (const row of before) {
			if (row.outcome === "FIRED") continue;
			// Only a fire the scheduler was late for (a stalled process) is a misfire before the pause;
			// with fire_once, of several late together only the newest is CAUGHT_UP.
			const expected = { skip: ["MISSED"], fire_once: ["MISSED", "CAUGHT_UP"], catch_up: ["CAUGHT_UP"] }[policy];
			assert.ok(expected.includes(row.outcome), `${row.fireTime} ${row.outcome}: ${outcomes(before)}`);
			assert.ok(ms(row.claimedAt) - ms(row.fireTime) > THRESHOLD, `${row.fireTime} ${row.outcome} though not late`);
		}
		const resumedFire = rows.findIndex(r => ms(r.fireTime) >= pausedAt && r.outcome === "FIRED");
		assert.ok(
			ms(rows[resumedFire].fireTime) > resumeSentAt,
			`no FIRED row inside the paused interval [${new Date(pausedAt).toISOString()}, ${new Date(resumeSentAt).toISOString()}]: ${outcomes(rows)}`
		);
		const pausedOver = rows.slice(before.length, resumedFire);
		assert.ok(pausedOver.length >= 3, `paused over at least 3 fire times: ${outcomes(rows)}`);
		for (const row of pausedOver) assert.ok(ms(row.fireTime) <= resumeDoneAt);
		return { rows, pausedOver, job };
	}

	it("pause then resume with skip: the paused-over fire times are PAUSED rows, none fired", async () => {
		const { pausedOver } = await pauseAndResume("skip");
		for (const row of pausedOver) {
			assert.equal(row.outcome, "PAUSED", outcomes(pausedOver));
			assert.deepEqual(row.taskIds, []);
			assert.equal(row.firedAt, null);
			assert.match(row.detail ?? "", /paused; policy skip/);
		}
	});

	it("pause then resume with fire_once: PAUSED rows and exactly one CAUGHT_UP, the newest", async () => {
		const { pausedOver } = await pauseAndResume("fire_once");
		assert.deepEqual(
			pausedOver.map(r => r.outcome),
			[...Array(pausedOver.length - 1).fill("PAUSED"), "CAUGHT_UP"]
		);
		const caughtUp = pausedOver.at(-1)!;
		assert.equal(typeof caughtUp.taskId, "string");
		assert.match(caughtUp.detail ?? "", /fire_once/);
		assert.equal((await tern.query(caughtUp.taskId!)).status, "PENDING");
	});

	it("pause then resume with catch_up: a CAUGHT_UP row and a task for each paused-over fire time", async () => {
		const { pausedOver } = await pauseAndResume("catch_up");
		const ids = new Set<string>();
		for (const row of pausedOver) {
			assert.equal(row.outcome, "CAUGHT_UP", outcomes(pausedOver));
			assert.equal(row.taskIds.length, 1);
			ids.add(row.taskId!);
			const view = (await tern.api<TaskView>("GET", `/api/tasks/${row.taskId}`)).body;
			assert.equal(view.idempotencyKey, `job:${row.jobId}:${ms(row.fireTime)}`);
		}
		assert.equal(ids.size, pausedOver.length, "one task each");
	});

	/**
	 * Jobs firing every 500 ms on a node that then goes down for DOWNTIME ms: the node is stopped
	 * and its jobs and ledger moved DOWNTIME into the past, so that the node started next finds
	 * the fire times of that long a downtime unfired (as after a real one, without waiting it
	 * out). DOWNTIME is not a multiple of 500, so shifted fire times never meet unshifted ones.
	 * Answers each job's ledger once it has fired after the restart, and the rows the new node
	 * wrote for the fire times that were late when it took the job on.
	 */
	const DOWNTIME = 2250;
	async function afterDowntime(policies: readonly ("skip" | "fire_once" | "catch_up")[], restartSettings: typeof settings) {
		const created: Record<string, JobView> = {};
		for (const policy of policies)
			created[policy] = await createJob({ name: `down-${policy}`, schedule: { every: 500 }, misfirePolicy: policy, task });
		for (const policy of policies) await waitForLedger(created[policy].id, rows => fired(rows).length >= 2, "two fires");

		await tern.stop();
		await shiftIntoPast(
			tern.dataDir,
			Object.values(created).map(job => job.id),
			DOWNTIME
		);
		const restartAt = Date.now();
		tern = await tern.restart(restartSettings);

		const result: Record<string, { rows: FireView[]; late: FireView[] }> = {};
		for (const policy of policies) {
			const id = created[policy].id;
			const rows = await waitForLedger(
				id,
				rows => fired(rows).some(r => ms(r.claimedAt) >= restartAt),
				`a fire of ${policy} after the restart`
			);
			assertNoGaps(rows, 500);
			assert.equal((ms(rows[0].fireTime) - ms(created[policy].createdAt) + DOWNTIME) % 500, 0);
			// The first row the new node wrote is from the moment it took the job on.
			const written = rows.filter(r => ms(r.claimedAt) >= restartAt);
			const armedAt = Math.min(...written.map(r => ms(r.claimedAt)));
			const late = written.filter(r => ms(r.fireTime) <= armedAt);
			assert.ok(late.length >= 4, `${policy}: at least 4 fire times passed while down: ${outcomes(rows)}`);
			for (const row of rows.filter(r => ms(r.claimedAt) < restartAt)) assert.equal(row.outcome, "FIRED");
			// Then regular fires (a misfire only where the scheduler was late for it).
			for (const row of written.filter(r => !late.includes(r)))
				if (row.outcome !== "FIRED")
					assert.ok(ms(row.claimedAt) - ms(row.fireTime) > THRESHOLD, `${row.fireTime} ${row.outcome} though not late`);
			result[policy] = { rows, late };
		}
		return result;
	}

	it("after downtime: skip records MISSED, fire_once one CAUGHT_UP, catch_up a CAUGHT_UP per missed time", async () => {
		const result = await afterDowntime(["skip", "fire_once", "catch_up"], settings);

		const skip = result.skip.late;
		// Older than the grace: skipped. Only the newest, if it was within the grace, fired.
		for (const row of skip.slice(0, -1)) {
			assert.equal(row.outcome, "MISSED", outcomes(skip));
			assert.match(row.detail ?? "", /not fired in time; policy skip/);
			assert.deepEqual(row.taskIds, []);
			assert.ok(ms(row.claimedAt) - ms(row.fireTime) > THRESHOLD, `${row.fireTime} is older than the grace`);
		}
		assert.ok(["MISSED", "FIRED"].includes(skip.at(-1)!.outcome), outcomes(skip));

		const once = result.fire_once.late;
		assert.deepEqual(
			once.map(r => r.outcome),
			[...Array(once.length - 1).fill("MISSED"), "CAUGHT_UP"],
			outcomes(once)
		);
		assert.equal(once.at(-1)!.taskIds.length, 1);
		assert.match(once.at(-1)!.detail ?? "", new RegExp(`fire_once, ${once.length} missed`));

		const catchUp = result.catch_up.late;
		assert.deepEqual(
			catchUp.map(r => r.outcome),
			Array(catchUp.length).fill("CAUGHT_UP"),
			outcomes(catchUp)
		);
		assert.equal(new Set(catchUp.map(r => r.taskId)).size, catchUp.length, "a task each");
	});

	// Defect 8: with the default grace (5 s), every fire time of a 2 s downtime was within it,
	// and skip and fire_once fired them all at once after the restart.
	it("fire times late by less than the grace are not a burst: skip and fire_once fire one of them, the rest MISSED", async () => {
		const result = await afterDowntime(["skip", "fire_once"], { scheduler: { misfireThreshold: 5000 } });
		for (const [policy, outcome] of [
			["skip", "FIRED"],
			["fire_once", "CAUGHT_UP"]
		] as const) {
			const late = result[policy].late;
			assert.ok(
				late.every(r => ms(r.claimedAt) - ms(r.fireTime) < 5000),
				`all within the grace: ${outcomes(late)}`
			);
			assert.deepEqual(
				late.map(r => r.outcome),
				[...Array(late.length - 1).fill("MISSED"), outcome],
				`${policy}: ${outcomes(late)}`
			);
			assert.equal(late.flatMap(r => r.taskIds).length, 1, `${policy}: one task for all the late fire times`);
			for (const row of late.slice(0, -1))
				assert.match(row.detail ?? "", new RegExp(`not fired in time; policy ${policy}`));
		}
	});
});
