/**
 * Secrets at rest: a task's `secrets` and the values at its `sensitive` payload paths are never
 * in the database in plaintext (not in the SQLite file, not in its WAL, not in any column), never
 * in an API answer or a /client event, and reach the terminal that runs the task in plaintext —
 * over socket.io, the raw WebSocket and the HTTP pull, again on a retry. Job secrets reach the
 * tasks a fire makes; a sensitive script is sealed; a key rotation moves every value to the new key.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { io, type Socket } from "socket.io-client";
import type { Sequelize } from "sequelize";
import type { TaskPush, TaskStatusEvent } from "../../lib/contracts.ts";
import { TestTern, waitFor } from "../helpers/tern.ts";
import { TestDatabase } from "../helpers/mysql.ts";
import { NodeProcess, freePort } from "../support/node-process.ts";
import { restCall } from "../support/rest.ts";
import { needs } from "../support/servers.ts";

const TOKEN = `tok-${randomBytes(6).toString("hex")}`;
const API_KEY = `sk-${randomBytes(6).toString("hex")}`;

/** A body with a secret and a sensitive payload path, for `terminalId`. */
function body(terminalId: string, extra: Record<string, unknown> = {}) {
	return {
		terminalId,
		type: "deploy",
		payload: { doc: 42, env: { TOKEN, REGION: "eu" } },
		secrets: { API_KEY },
		sensitive: ["env.TOKEN"],
		...extra
	};
}

function sequelizeOf(tern: TestTern): Sequelize {
	return (tern.broker.getLocalService("dispatcher") as unknown as { model: { sequelize: Sequelize } }).model.sequelize;
}

async function rows(tern: TestTern, sql: string): Promise<Record<string, unknown>[]> {
	const [found] = await sequelizeOf(tern).query(sql);
	return found as Record<string, unknown>[];
}

/** Every byte of the SQLite database as text: the file, its WAL and shared memory. */
function sqliteBytes(dataDir: string): string {
	return ["tern.sqlite", "tern.sqlite-wal", "tern.sqlite-shm"]
		.map(name => join(dataDir, name))
		.filter(existsSync)
		.map(file => readFileSync(file).toString("latin1"))
		.join("\n");
}

function assertNoPlaintext(text: string, where: string, secrets: string[] = [TOKEN, API_KEY]): void {
	for (const secret of secrets) assert.ok(!text.includes(secret), `${where} holds the plaintext '${secret}'`);
}

/** The task as the terminal must see it: the secret and the sensitive value in plaintext. */
function assertPlain(task: TaskPush): void {
	assert.deepEqual(task.secrets, { API_KEY });
	assert.deepEqual(task.payload, { doc: 42, env: { TOKEN, REGION: "eu" } });
}

describe("secrets at rest (SQLite)", () => {
	let tern: TestTern;
	const open: Socket[] = [];

	before(async () => {
		tern = await TestTern.start();
	});
	after(async () => {
		for (const socket of open) socket.close();
		await tern.close();
	});

	it("seals a task's secrets: plaintext only in the push, '***' in answers, events and the database", async () => {
		const token = await tern.registerTerminal("sec-sio");
		const terminal = await tern.connectTerminal("sec-sio", token);
		const follower = io(`${tern.url}/client`, {
			auth: { token: tern.adminToken },
			transports: ["websocket"],
			forceNew: true,
			reconnection: false
		});
		open.push(follower);
		const events: TaskStatusEvent[] = [];
		follower.on("status", (event: TaskStatusEvent) => events.push(event));
		await new Promise<void>(resolve => follower.once("connect", () => resolve()));

		const taskId = await tern.submit(body("sec-sio"));
		await follower.timeout(5000).emitWithAck("subscribe", { taskId });
		const task = await terminal.nextTask();
		assertPlain(task);
		await terminal.ack(task);
		await terminal.result(task);
		await tern.waitForStatus(taskId, "COMPLETED");
		await waitFor(() => events.some(e => e.taskId === taskId && e.status === "COMPLETED"));

		const view = (await tern.api("GET", `/api/tasks/${taskId}`)).body;
		assert.deepEqual(view.payload, { doc: 42, env: { TOKEN: "***", REGION: "eu" } });
		assert.deepEqual(view.secrets, { API_KEY: "***" });
		assert.deepEqual(view.sensitive, ["env.TOKEN"]);
		const list = (await tern.api("GET", "/api/tasks?terminalId=sec-sio")).body;
		assert.deepEqual(list.rows[0].secrets, { API_KEY: "***" });
		assertNoPlaintext(JSON.stringify(list), "GET /api/tasks");
		assertNoPlaintext(JSON.stringify((await tern.api("GET", `/api/task/query?taskId=${taskId}`)).body), "task/query");
		assertNoPlaintext(JSON.stringify(events), "the /client events");

		const [row] = await rows(tern, `SELECT secrets, payload FROM tasks WHERE id = '${taskId}'`);
		assert.match(String(row.secrets), /"sealed":"enc:v2:k1:/);
		assertNoPlaintext(`${row.secrets} ${row.payload}`, "the task row");
		assertNoPlaintext(sqliteBytes(tern.dataDir), "the SQLite files");
	});

	it("pushes the secrets over the raw WebSocket, the HTTP pull, and again on a retry", async () => {
		const wsToken = await tern.registerTerminal("sec-ws");
		const ws = await tern.openWs("/ws/terminal/sec-ws", wsToken);
		await tern.waitForTerminal("sec-ws", "online");
		const wsTask = await tern.submit(body("sec-ws", { maxRetries: 1, backoff: { type: "fixed", delay: 0 } }));
		const first = (await ws.next("task")).task as TaskPush;
		assertPlain(first);
		ws.send({ type: "ack", taskId: wsTask, attempt: first.attempt });
		ws.send({ type: "result", taskId: wsTask, attempt: first.attempt, status: "failed", error: "boom" });
		const retried = (await ws.next("task")).task as TaskPush;
		assert.equal(retried.attempt, 2);
		assertPlain(retried);

		const pullToken = await tern.registerTerminal("sec-pull");
		await tern.submit(body("sec-pull"));
		const pulled = await tern.api("GET", "/api/task/pull?terminalId=sec-pull", undefined, pullToken);
		assert.equal(pulled.status, 200);
		assertPlain(pulled.body.tasks[0]);
		assertNoPlaintext(sqliteBytes(tern.dataDir), "the SQLite files");
	});

	it("answers a repeated submit with its task, and a changed secret with IDEMPOTENCY_CONFLICT", async () => {
		await tern.registerTerminal("sec-idem");
		const key = { idempotencyKey: "sec-idem-1" };
		const first = await tern.api("POST", "/api/task/submit", body("sec-idem", key));
		const again = await tern.api("POST", "/api/task/submit", body("sec-idem", key));
		assert.equal(again.body.taskId, first.body.taskId);
		assert.equal(again.body.duplicate, true);
		const changed = await tern.api("POST", "/api/task/submit", body("sec-idem", { ...key, secrets: { API_KEY: "other" } }));
		assert.equal(changed.status, 409);
		assert.equal(changed.body.type, "IDEMPOTENCY_CONFLICT");
		const payload = { doc: 42, env: { TOKEN: "other", REGION: "eu" } };
		const sensitive = await tern.api("POST", "/api/task/submit", body("sec-idem", { ...key, payload }));
		assert.equal(sensitive.body.type, "IDEMPOTENCY_CONFLICT");
	});

	it("refuses bad secrets, naming the field, and creates nothing", async () => {
		await tern.registerTerminal("sec-bad");
		const cases: [Record<string, unknown>, RegExp][] = [
			[{ sensitive: ["env.NOPE"] }, /sensitive\[0\]/],
			[{ sensitive: ["env", "env.TOKEN"] }, /sensitive\[0\]/],
			[{ sensitive: ["a..b"] }, /sensitive/],
			[{ secrets: { "1BAD": "x" } }, /secrets/],
			[{ secrets: { API_KEY: 5 } }, /secrets/],
			[{ secrets: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`S${i}`, "x"])) }, /secrets/]
		];
		for (const [extra, field] of cases) {
			const reply = await tern.api("POST", "/api/task/submit", body("sec-bad", extra));
			assert.equal(reply.status, 422, JSON.stringify(extra));
			assert.equal(reply.body.type, "VALIDATION_ERROR");
			assert.match(reply.body.message, field);
		}
		assert.equal((await tern.api("GET", "/api/tasks?terminalId=sec-bad")).body.total, 0);
	});

	it("seals a job's task secrets and hands them to the tasks its fires make", async () => {
		const token = await tern.registerTerminal("sec-job");
		const terminal = await tern.connectTerminal("sec-job", token);
		const created = await tern.api("POST", "/api/jobs", {
			name: "sec-job",
			schedule: { cron: "0 0 1 1 *" },
			task: body("sec-job")
		});
		assert.equal(created.status, 201, JSON.stringify(created.body));
		const jobId = created.body.id;
		assert.deepEqual(created.body.task.secrets, { API_KEY: "***" });
		assert.deepEqual(created.body.task.payload.env.TOKEN, "***");
		const shown = (await tern.api("GET", `/api/jobs/${jobId}`)).body;
		assertNoPlaintext(JSON.stringify(shown), "GET /api/jobs/:id");
		assertNoPlaintext(JSON.stringify((await tern.api("GET", "/api/jobs")).body), "GET /api/jobs");

		assert.equal((await tern.api("POST", `/api/jobs/${jobId}/execute`)).status < 300, true);
		assertPlain(await terminal.nextTask());
		assertNoPlaintext(JSON.stringify((await tern.api("GET", `/api/jobs/${jobId}/history`)).body), "the job's history");
		const [job] = await rows(tern, `SELECT * FROM jobs WHERE id = '${jobId}'`);
		assertNoPlaintext(JSON.stringify(job), "the job row");

		// A PUT that sends the shown task back ("***" for the secrets) keeps them; a new value replaces one.
		const { secrets: shownSecrets, ...shownTask } = shown.task;
		const put = await tern.api("PUT", `/api/jobs/${jobId}`, {
			task: { ...shownTask, secrets: { ...shownSecrets, EXTRA: "x" } }
		});
		assert.equal(put.status, 200, JSON.stringify(put.body));
		assert.deepEqual(put.body.task.secrets, { API_KEY: "***", EXTRA: "***" });
		await tern.api("POST", `/api/jobs/${jobId}/execute`);
		const again = await terminal.nextTask();
		assert.deepEqual(again.secrets, { API_KEY, EXTRA: "x" });
		assert.deepEqual(again.payload, { doc: 42, env: { TOKEN, REGION: "eu" } });
		assertNoPlaintext(sqliteBytes(tern.dataDir), "the SQLite files");
	});

	it("stores a sensitive script sealed: '***' for users, the body for terminals, the hash of the plaintext", async () => {
		const script = `echo ${API_KEY}`;
		const created = await tern.api("POST", "/api/scripts", {
			name: "sec-script",
			interpreter: "sh",
			body: script,
			sensitive: true
		});
		assert.equal(created.status, 201);
		assert.equal(created.body.sha256, createHash("sha256").update(script).digest("hex"));
		const asUser = (await tern.api("GET", "/api/scripts/sec-script")).body;
		assert.equal(asUser.body, "***");
		assert.equal(asUser.sensitive, true);
		const token = await tern.registerTerminal("sec-script-reader");
		const asTerminal = (await tern.api("GET", "/api/scripts/sec-script/versions/1", undefined, token)).body;
		assert.equal(asTerminal.body, script);
		const [row] = await rows(tern, "SELECT body FROM scripts WHERE name = 'sec-script'");
		assert.match(String(row.body), /^enc:v2:k1:/);
		assertNoPlaintext(sqliteBytes(tern.dataDir), "the SQLite files", [API_KEY]);
	});
});

describe("data keys and files on disk", () => {
	const key = () => randomBytes(32).toString("base64");
	const k1 = `k1:${key()}`;
	const k2 = `k2:${key()}`;

	it("creates the data dir 0700 and the SQLite file, its WAL and the data keys 0600", async () => {
		const parent = mkdtempSync(join(tmpdir(), "tern-modes-"));
		const dataDir = join(parent, "data");
		const tern = await TestTern.start({ dataDir });
		try {
			await tern.registerTerminal("modes");
			assert.equal(statSync(dataDir).mode & 0o777, 0o700);
			for (const file of ["tern.sqlite", "tern.sqlite-wal", "data-keys", "jwt-secret"])
				assert.equal(statSync(join(dataDir, file)).mode & 0o777, 0o600, file);
		} finally {
			await tern.close();
			rmSync(parent, { recursive: true, force: true });
		}
	});

	it("rotates: values sealed with k1 move to k2, then open with k2 alone", async () => {
		let tern = await TestTern.start({ env: { TERN_DATA_KEYS: k1 }, keep: true });
		const dataDir = tern.dataDir;
		try {
			const token = await tern.registerTerminal("rot");
			const taskId = await tern.submit(body("rot"));
			await tern.api("POST", "/api/scripts", { name: "rot", interpreter: "sh", body: `echo ${API_KEY}`, sensitive: true });
			const job = await tern.api("POST", "/api/jobs", { name: "rot", schedule: { cron: "0 0 1 1 *" }, task: body("rot") });
			assert.equal(job.status, 201);
			const channel = await tern.api("POST", "/api/alert-channels", {
				name: "rot",
				type: "webhook",
				config: { url: "http://127.0.0.1:9/hook", secret: API_KEY }
			});
			assert.equal(channel.status, 201, JSON.stringify(channel.body));
			const sealedWith = async () => {
				const [task] = await rows(tern, `SELECT secrets FROM tasks WHERE id = '${taskId}'`);
				const [script] = await rows(tern, "SELECT body FROM scripts WHERE name = 'rot'");
				const [jobRow] = await rows(tern, `SELECT task FROM jobs WHERE id = '${job.body.id}'`);
				const [channelRow] = await rows(tern, "SELECT config FROM alert_channels WHERE name = 'rot'");
				return [
					/"sealed":"enc:v2:(\w+):/.exec(String(task.secrets))?.[1],
					/^enc:v2:(\w+):/.exec(String(script.body))?.[1],
					/enc:v2:(\w+):/.exec(String(jobRow.task))?.[1],
					/enc:v2:(\w+):/.exec(String(channelRow.config))?.[1]
				];
			};
			assert.deepEqual(await sealedWith(), ["k1", "k1", "k1", "k1"]);

			await tern.stop();
			tern = await TestTern.start({ dataDir, keep: true, env: { TERN_DATA_KEYS: `${k2},${k1}` } });
			await waitFor(
				async () => (await sealedWith()).every(kid => kid === "k2"),
				10_000,
				() => "every value on k2"
			);

			await tern.stop();
			tern = await TestTern.start({ dataDir, keep: true, env: { TERN_DATA_KEYS: k2 } });
			const terminal = await tern.connectTerminal("rot", token);
			assertPlain(await terminal.nextTask());
			const script = await tern.api("GET", "/api/scripts/rot", undefined, token);
			assert.equal(script.body.body, `echo ${API_KEY}`);
			assertNoPlaintext(sqliteBytes(dataDir), "the SQLite files after the rotation");
		} finally {
			await tern.close();
			rmSync(dataDir, { recursive: true, force: true });
		}
	});
});

describe("secrets at rest (MariaDB)", { skip: needs("mariadb") }, () => {
	let db: TestDatabase;
	let tern: TestTern;

	before(async () => {
		db = await TestDatabase.create("tern_secrets");
		tern = await TestTern.start({ dbUri: db.uri, keep: true });
	});
	after(async () => {
		await tern?.close();
		if (tern) rmSync(tern.dataDir, { recursive: true, force: true });
		await db?.drop();
	});

	it("keeps no plaintext in the tasks table, and pushes it to the terminal", async () => {
		const token = await tern.registerTerminal("sec-maria");
		const taskId = await tern.submit(body("sec-maria"));
		const stored = await db.query<{ secrets: string; payload: string }>("SELECT secrets, payload FROM tasks WHERE id = ?", [
			taskId
		]);
		assert.match(stored[0].secrets, /"sealed":"enc:v2:k1:/);
		assertNoPlaintext(JSON.stringify(await db.query("SELECT * FROM tasks")), "the tasks table");
		const terminal = await tern.connectTerminal("sec-maria", token);
		assertPlain(await terminal.nextTask());
	});

	it("re-seals the tasks table with a new active key", async () => {
		await tern.registerTerminal("sec-maria-rot");
		const taskId = await tern.submit(body("sec-maria-rot"));
		const k1 = readFileSync(join(tern.dataDir, "data-keys"), "utf8").trim();
		const dataDir = tern.dataDir;
		await tern.stop();
		const k2 = `k2:${randomBytes(32).toString("base64")}`;
		tern = await TestTern.start({ dbUri: db.uri, dataDir, keep: true, env: { TERN_DATA_KEYS: `${k2},${k1}` } });
		await waitFor(
			async () =>
				/"sealed":"enc:v2:k2:/.test(
					(await db.query<{ secrets: string }>("SELECT secrets FROM tasks WHERE id = ?", [taskId]))[0].secrets
				),
			10_000,
			() => "the task's secrets on k2"
		);
		assertNoPlaintext(JSON.stringify(await db.query("SELECT * FROM tasks")), "the tasks table");
	});
});

describe("secrets are never logged (LOG_FORMAT=json, LOGLEVEL=debug)", () => {
	let node: NodeProcess;
	let dir: string;

	before(async () => {
		dir = mkdtempSync(join(tmpdir(), "tern-secret-logs-"));
		const env: NodeJS.ProcessEnv = {
			...process.env,
			TERN_DATA_DIR: dir,
			TERN_ADMIN_PASSWORD: "pw-for-secret-logs",
			LOG_FORMAT: "json",
			LOGLEVEL: "debug"
		};
		delete env.TRANSPORTER;
		delete env.DB_URI;
		node = new NodeProcess({ id: "secret-logs", services: ["all"] }, await freePort(), await freePort(), env);
		node.start();
		await node.waitReady();
	});
	after(async () => {
		await node?.stop();
		if (dir) rmSync(dir, { recursive: true, force: true });
	});

	it("logs no secret or sensitive value on the way from submit to result", async () => {
		const login = await restCall<{ token: string }>(`${node.url}/api/auth/login`, "POST", {
			username: "admin",
			password: "pw-for-secret-logs"
		});
		const admin = login.body.token;
		const reg = await restCall<{ token: string }>(`${node.url}/api/terminals`, "POST", { id: "log-sec" }, admin);
		const socket = io(`${node.url}/terminal`, {
			auth: { token: reg.body.token },
			transports: ["websocket"],
			reconnection: false
		});
		try {
			const received = new Promise<TaskPush>(resolve => socket.once("task", resolve));
			await new Promise<void>(resolve => socket.once("connect", () => resolve()));
			await waitFor(
				async () =>
					(await restCall(`${node.url}/api/terminals/log-sec`, "GET", undefined, admin)).body.status === "online"
			);
			const submitted = await restCall<{ taskId: string }>(`${node.url}/api/task/submit`, "POST", body("log-sec"), admin);
			assert.equal(submitted.status, 201);
			const task = await received;
			assertPlain(task);
			await socket.timeout(5000).emitWithAck("ack", { taskId: task.taskId, attempt: task.attempt });
			await socket.timeout(5000).emitWithAck("result", { taskId: task.taskId, attempt: task.attempt, status: "success" });
			await waitFor(
				async () =>
					(
						await restCall<{ status: string }>(
							`${node.url}/api/task/query?taskId=${task.taskId}`,
							"GET",
							undefined,
							admin
						)
					).body.status === "COMPLETED"
			);
		} finally {
			socket.close();
		}
		assert.ok(
			node.output.some(line => line.includes('"level":"debug"')),
			"the node logs at debug"
		);
		assertNoPlaintext(node.output.join("\n"), "the log");
	});
});
