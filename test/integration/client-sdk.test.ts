/**
 * The client SDK (client/): log in or use an API token, submit one task or a batch, wait for
 * the final state, follow live, read logs, manage jobs; and every failure as a typed error with
 * the API's `type`. Against a real Tern, with a real socket.io terminal doing the work.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ADMIN_PASSWORD, TestTern, type TestTerminal } from "../helpers/tern.ts";
import {
	NotFoundError,
	TernClient,
	UnauthorizedError,
	ValidationError,
	WaitTimeoutError,
	type TernError
} from "../../client/index.ts";
import type { TaskProgressEvent, TaskStatusEvent } from "../../lib/contracts.ts";

describe("TernClient", () => {
	let tern: TestTern;
	let client: TernClient;
	let terminal: TestTerminal;

	before(async () => {
		tern = await TestTern.start();
		client = await TernClient.login(tern.url, "admin", ADMIN_PASSWORD);
		terminal = await tern.connectTerminal("sdk-1", await tern.registerTerminal("sdk-1"));
	});
	after(async () => {
		client.close();
		await tern.close();
	});

	/** Runs the terminal's next task to its end: ack, a log line, the result. */
	async function work(output: unknown): Promise<void> {
		const task = await terminal.nextTask();
		await terminal.ack(task);
		await terminal.request("progress", { taskId: task.taskId, attempt: task.attempt, percent: 50, log: "half way" });
		await terminal.result(task, "success", output);
	}

	it("logs in, and refuses a wrong password as UnauthorizedError with the API's type", async () => {
		assert.match(client.token ?? "", /^ey/);
		const refused = await TernClient.login(tern.url, "admin", "wrong").catch((err: TernError) => err);
		assert.ok(refused instanceof UnauthorizedError, String(refused));
		assert.equal(refused.status, 401);
		assert.equal(typeof refused.type, "string");
		assert.notEqual(refused.type, "");
	});

	it("submits, waits for the final state and reads the task's logs", async () => {
		const { taskId } = await client.submit({ terminalId: "sdk-1", type: "shell", payload: { cmd: "true" } });
		const [final] = await Promise.all([client.wait(taskId, { timeoutMs: 10_000 }), work({ answer: 42 })]);
		assert.equal(final.status, "COMPLETED");
		assert.deepEqual(final.data, { answer: 42 });
		const { lines } = await client.logs(taskId);
		assert.deepEqual(
			lines.map(line => line.text),
			["half way"]
		);
		assert.equal((await client.get(taskId)).type, "shell");
		assert.ok((await client.list({ terminalId: "sdk-1" })).rows.some(row => row.taskId === taskId));
	});

	it("follows a task live: its current status first, then each change and each progress line", async () => {
		const { taskId } = await client.submit({ terminalId: "sdk-1", type: "shell" });
		const statuses: TaskStatusEvent[] = [];
		const progress: TaskProgressEvent[] = [];
		let following: { close(): void } | undefined;
		const done = new Promise<void>((resolve, reject) => {
			client
				.follow(taskId, {
					status: event => {
						statuses.push(event);
						if (event.status === "COMPLETED") resolve();
					},
					progress: event => progress.push(event)
				})
				.then(handle => (following = handle), reject);
		});
		await work("done");
		await done;
		following?.close();
		const seen = statuses.map(event => event.status);
		assert.equal(seen.at(-1), "COMPLETED");
		assert.ok(seen.includes("PROCESSING"), seen.join(" → "));
		assert.deepEqual(
			progress.map(event => event.log),
			["half way"]
		);
	});

	it("submits a batch: one answer per task, a bad one beside the good", async () => {
		const answers = await client.submitBatch([
			{ terminalId: "sdk-1", type: "shell" },
			{ terminalId: "no-such-terminal", type: "shell" }
		]);
		assert.equal(answers.length, 2);
		assert.ok("taskId" in answers[0]!, JSON.stringify(answers[0]));
		assert.ok("error" in answers[1]!, JSON.stringify(answers[1]));
		await work(null);
	});

	it("uses an API token, and names the caller's field in a ValidationError", async () => {
		const { token } = await client.request<{ token: string }>("POST", "/api/tokens", {
			body: { name: "sdk", scope: "submit" }
		});
		const ci = new TernClient({ url: tern.url, token });
		const refused = await ci.submit({ terminalId: "sdk-1", type: "shell", priority: 99 }).catch((err: TernError) => err);
		assert.ok(refused instanceof ValidationError, String(refused));
		assert.equal(refused.type, "VALIDATION_ERROR");
		assert.deepEqual(
			refused.fields.map(field => field.field),
			["priority"]
		);
		const missing = await ci.query("no-such-task").catch((err: TernError) => err);
		assert.ok(missing instanceof NotFoundError, String(missing));
		assert.equal(missing.type, "TASK_NOT_FOUND");
		const anonymous = await new TernClient({ url: tern.url }).query("x").catch((err: TernError) => err);
		assert.ok(anonymous instanceof UnauthorizedError);
	});

	it("gives up waiting with WaitTimeoutError, and refuses to follow an unknown task", async () => {
		const { taskId } = await client.submit({ terminalId: "sdk-1", type: "shell" });
		const late = await client.wait(taskId, { timeoutMs: 50 }).catch((err: TernError) => err);
		assert.ok(late instanceof WaitTimeoutError, String(late));
		const unknown = await client.follow("no-such-task", {}).catch((err: TernError) => err);
		assert.ok(unknown instanceof NotFoundError, String(unknown));
		await work(null);
		assert.equal((await client.wait(taskId)).status, "COMPLETED");
	});

	it("creates, reads, changes, runs, pauses, resumes and removes a job", async () => {
		const job = await client.jobs.create({
			name: "sdk-nightly",
			schedule: { cron: "0 3 * * *", timezone: "UTC" },
			task: { terminalId: "sdk-1", type: "report" }
		});
		assert.equal((await client.jobs.get(job.id)).name, "sdk-nightly");
		assert.ok((await client.jobs.list({ search: "sdk-" })).rows.some(row => row.id === job.id));
		assert.equal((await client.jobs.update(job.id, { name: "sdk-nightly-2" })).name, "sdk-nightly-2");
		assert.equal((await client.jobs.pause(job.id)).status, "paused");
		assert.notEqual((await client.jobs.resume(job.id)).status, "paused");
		const fired = await client.jobs.execute(job.id);
		assert.equal(fired.taskIds.length, 1);
		await work(null);
		assert.equal((await client.wait(fired.taskIds[0]!)).status, "COMPLETED");
		await client.jobs.remove(job.id);
		const gone = await client.jobs.get(job.id).catch((err: TernError) => err);
		assert.ok(gone instanceof NotFoundError, String(gone));
	});
});
