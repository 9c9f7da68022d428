/**
 * Tern's REPL commands against a running node: what a developer types in `npm run dev`.
 */
import { after, before, describe, it, mock } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { TestTern } from "../helpers/tern.ts";
import { replCommands } from "../../lib/repl-commands.ts";

function command(name: string) {
	const found = replCommands.find(c => c.command.split(" ")[0] === name);
	assert.ok(found, `command ${name}`);
	return found;
}

describe("REPL commands", () => {
	let tern: TestTern;
	let printed: string[];

	before(async () => {
		tern = await TestTern.start();
	});
	after(() => tern.close());

	function capture() {
		printed = [];
		mock.method(console, "log", (...args: unknown[]) => void printed.push(args.join(" ")));
		mock.method(console, "table", (rows: unknown) => void printed.push(JSON.stringify(rows)));
	}

	it("lists terminals with their status", async () => {
		const token = await tern.registerTerminal("repl-1", { labels: { zone: "a" } });
		await tern.registerTerminal("repl-2");
		const terminal = await tern.connectTerminal("repl-1", token);
		capture();
		const all = (await command("terminals").action(tern.broker, { options: {} })) as { id: string; status: string }[];
		assert.deepEqual(
			all.map(t => [t.id, t.status]),
			[
				["repl-1", "online"],
				["repl-2", "offline"]
			]
		);
		assert.match(printed.join("\n"), /repl-1.*online/);
		const online = (await command("terminals").action(tern.broker, { options: { status: "online" } })) as unknown[];
		assert.equal(online.length, 1);
		mock.restoreAll();
		terminal.close();
	});

	it("submits a task, lists it and shows it", async () => {
		capture();
		const submitted = (await command("submit").action(tern.broker, {
			terminalId: "repl-2",
			type: "shell",
			payload: '{"argv":["true"]}',
			options: { priority: "7" }
		})) as { taskId: string };
		assert.match(printed.join("\n"), new RegExp(`Submitted ${submitted.taskId}`));
		const page = (await command("tasks").action(tern.broker, { options: { status: "pending" } })) as {
			rows: { taskId: string }[];
		};
		assert.ok(page.rows.some(r => r.taskId === submitted.taskId));
		const task = (await command("task").action(tern.broker, { taskId: submitted.taskId, options: {} })) as {
			priority: number;
			payload: unknown;
		};
		assert.equal(task.priority, 7);
		assert.deepEqual(task.payload, { argv: ["true"] });
		const cancelled = (await command("cancel").action(tern.broker, { taskId: submitted.taskId, options: {} })) as {
			status: string;
		};
		assert.equal(cancelled.status, "CANCELLED");
		mock.restoreAll();
	});

	it("lists jobs, shows one with its ledger and fires it now", async () => {
		const created = await tern.api("POST", "/api/jobs", {
			name: "repl-job",
			schedule: { every: 3_600_000 },
			task: { terminalId: "repl-2", type: "tick" }
		});
		assert.equal(created.status, 201);
		capture();
		const page = (await command("jobs").action(tern.broker, { options: {} })) as { rows: { id: string }[] };
		assert.ok(page.rows.some(r => r.id === created.body.id));
		const fired = (await command("fire").action(tern.broker, { jobId: created.body.id, options: {} })) as {
			taskIds: string[];
		};
		assert.equal(fired.taskIds.length, 1);
		const shown = (await command("job").action(tern.broker, { jobId: created.body.id, options: {} })) as {
			history: { rows: { outcome: string; manual: boolean }[] };
		};
		assert.deepEqual(
			shown.history.rows.map(r => [r.outcome, r.manual]),
			[["FIRED", true]]
		);
		assert.match(printed.join("\n"), /repl-job/);
		mock.restoreAll();
	});

	it("prints an ordinary error as its message and type, without a stack trace", async () => {
		const errors: string[] = [];
		mock.method(console, "error", (...args: unknown[]) => void errors.push(args.join(" ")));
		const missing = (await command("task").action(tern.broker, { taskId: "missing", options: {} })) as {
			error: { type: string; message: string };
		};
		assert.equal(missing.error.type, "TASK_NOT_FOUND");
		const ghost = (await command("submit").action(tern.broker, { terminalId: "ghost", type: "x", options: {} })) as {
			error: { type: string };
		};
		assert.equal(ghost.error.type, "TERMINAL_NOT_FOUND");
		const invalid = (await command("submit").action(tern.broker, {
			terminalId: "repl-2",
			type: "x",
			options: { priority: "12" }
		})) as { error: { type: string } };
		assert.equal(invalid.error.type, "VALIDATION_ERROR");
		mock.restoreAll();
		assert.deepEqual(errors, [
			"Task 'missing' not found (TASK_NOT_FOUND)",
			"Terminal 'ghost' not found (TERMINAL_NOT_FOUND)",
			"The 'priority' field must be less than or equal to 9. (VALIDATION_ERROR)"
		]);
		assert.ok(!errors.some(line => /\n\s+at /.test(line)), "no stack trace");
	});

	it("refuses a payload nested too deep before it is sent, as an ordinary error", async () => {
		const errors: string[] = [];
		mock.method(console, "error", (...args: unknown[]) => void errors.push(args.join(" ")));
		const deep = '{"a":'.repeat(10_000) + "1" + "}".repeat(10_000);
		const reply = (await command("submit").action(tern.broker, {
			terminalId: "repl-2",
			type: "x",
			payload: deep,
			options: {}
		})) as { error: { type: string } };
		mock.restoreAll();
		assert.equal(reply.error.type, "VALIDATION_ERROR");
		assert.deepEqual(errors, ["'payload' nests deeper than 63 levels (VALIDATION_ERROR)"]);
	});

	it("throws a genuine internal error on, so that the REPL shows its stack", async () => {
		const failing = { call: () => Promise.reject(new Error("database file is corrupt")) } as unknown as ServiceBroker;
		await assert.rejects(command("task").action(failing, { taskId: "any", options: {} }), /database file is corrupt/);
	});
});
