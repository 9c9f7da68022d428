/**
 * Execution safety with the real agent: timeouts kill the whole process group (SIGTERM, then
 * SIGKILL) and leave no process behind, a cancel from Tern kills the running task, live output
 * reaches Tern while the task runs and stays after it ends, and a graceful shutdown finishes (or
 * kills and reports) what the agent holds.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { TaskLogLine } from "../../lib/contracts.ts";
import { TestTern, waitFor } from "../helpers/tern.ts";
import { AgentProcess, disposeAgents, processesWith } from "./helpers.ts";

/** Python that ignores SIGTERM and sleeps: only SIGKILL ends it. */
const STUBBORN =
	"import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('child up', flush=True)\ntime.sleep(300)";

/** A shell that ignores SIGTERM and starts two stubborn children, all three marked in `ps`. */
function stubbornTree(marker: string) {
	return {
		argv: ["sh", "-c", `trap '' TERM; python3 -c "$PY" ${marker} & python3 -c "$PY" ${marker} & echo started; wait`, marker],
		env: { PY: STUBBORN }
	};
}

describe("agent execution safety", () => {
	let tern: TestTern;
	let agent: AgentProcess;

	before(async () => {
		tern = await TestTern.start();
		const token = await tern.registerTerminal("safe-1");
		agent = await AgentProcess.start(tern, "safe-1", token, { args: ["--allow-commands", "sh,python3,echo"] });
	});
	after(async () => {
		await disposeAgents();
		await tern?.close();
	});

	async function waitForProcesses(marker: string, count: number) {
		await waitFor(
			() => processesWith(marker).length >= count,
			10_000,
			() =>
				`${count} processes marked ${marker} (have ${processesWith(marker).join(" | ")})\nagent:\n${agent.output.slice(-2000)}`
		);
	}

	async function waitForNoProcesses(marker: string) {
		await waitFor(
			() => processesWith(marker).length === 0,
			10_000,
			() => `no process marked ${marker} left (have ${processesWith(marker).join(" | ")})`
		);
	}

	it("kills a task at its timeout — SIGTERM, then SIGKILL to the whole group — and leaves no process behind", async () => {
		const marker = `tern-timeout-${randomUUID()}`;
		const taskId = await tern.submit({
			terminalId: "safe-1",
			type: "command",
			payload: { ...stubbornTree(marker), timeout: 1 }
		});
		await waitForProcesses(marker, 3);
		const view = await tern.waitForStatus(taskId, "FAILED", 10_000);
		assert.match(view.error ?? "", /Timed out after 1 s: the agent killed it \(SIGTERM, then SIGKILL after 0.5 s\)/);
		assert.equal((view.data as { signal: string }).signal, "SIGKILL", "SIGTERM was ignored, so SIGKILL ended it");
		assert.equal(view.exitCode, 137);
		await waitForNoProcesses(marker);
		assert.deepEqual(processesWith(marker), []);
	});

	it("ends the task's processes when Tern's own deadline passes (TIMEOUT, then cancel)", async () => {
		const marker = `tern-server-timeout-${randomUUID()}`;
		const taskId = await tern.submit({ terminalId: "safe-1", type: "command", timeout: 1, payload: stubbornTree(marker) });
		await waitForProcesses(marker, 3);
		const view = await tern.waitForStatus(taskId, "TIMEOUT", 10_000);
		assert.equal(view.status, "TIMEOUT");
		await agent.waitForLog(new RegExp(`Task ${taskId} \\(attempt 1\\) cancelled by Tern \\(timeout\\)`));
		await waitForNoProcesses(marker);
	});

	it("kills a running task when Tern cancels it, sends no result, and goes on", async () => {
		const marker = `tern-cancel-${randomUUID()}`;
		const taskId = await tern.submit({ terminalId: "safe-1", type: "command", payload: stubbornTree(marker) });
		await waitForProcesses(marker, 3);
		await tern.waitForStatus(taskId, "PROCESSING");
		const cancelled = await tern.api("POST", `/api/tasks/${taskId}/cancel`);
		assert.equal(cancelled.status, 200);
		await agent.waitForLog(new RegExp(`Task ${taskId} \\(attempt 1\\) cancelled by Tern \\(cancelled\\): stopping it`));
		await waitForNoProcesses(marker);
		const view = await tern.query(taskId);
		assert.equal(view.status, "CANCELLED");
		assert.equal(agent.count(new RegExp(`Result of ${taskId}`)), 0, "no result was sent for a cancelled task");

		const next = await tern.submit({ terminalId: "safe-1", type: "command", payload: { argv: ["echo", "after cancel"] } });
		assert.equal(((await tern.waitForStatus(next, "COMPLETED")).data as { stdout: string }).stdout, "after cancel\n");
	});

	it("kills what a finished task left running in the background", async () => {
		const marker = `tern-leftover-${randomUUID()}`;
		const taskId = await tern.submit({
			terminalId: "safe-1",
			type: "command",
			payload: {
				argv: ["sh", "-c", `python3 -c "$PY" ${marker} > /dev/null 2>&1 & echo parent done`, marker],
				env: { PY: STUBBORN }
			}
		});
		const view = await tern.waitForStatus(taskId, "COMPLETED", 10_000);
		assert.equal((view.data as { stdout: string }).stdout, "parent done\n");
		await waitForNoProcesses(marker);
	});

	it("streams stdout and stderr to Tern while the task runs, and keeps them after it ends", async () => {
		const marker = `tern-logs-${randomUUID()}`;
		const taskId = await tern.submit({
			terminalId: "safe-1",
			type: "command",
			payload: {
				argv: ["sh", "-c", `echo first line; echo to stderr >&2; python3 -c "$PY" ${marker}`, marker],
				env: { PY: "import time\nprint('from python', flush=True)\ntime.sleep(300)" }
			}
		});
		type Lines = { lines: TaskLogLine[]; next: number };
		let logs: Lines | undefined;
		await waitFor(
			async () => {
				const reply = await tern.api<Lines>("GET", `/api/tasks/${taskId}/logs`);
				logs = reply.body;
				return reply.status === 200 && (logs?.lines?.length ?? 0) >= 3;
			},
			10_000,
			() => `three log lines while running (have ${JSON.stringify(logs)})`
		);
		assert.equal((await tern.query(taskId)).status, "PROCESSING", "the lines came while the task ran");
		const texts = logs!.lines.map(l => `${l.stream}:${l.text}`);
		assert.ok(texts.includes("stdout:first line"), texts.join(" | "));
		assert.ok(texts.includes("stderr:to stderr"), texts.join(" | "));
		assert.ok(texts.includes("stdout:from python"), texts.join(" | "));
		assert.ok(logs!.lines.every(l => l.attempt === 1));
		const after = await tern.api<Lines>("GET", `/api/tasks/${taskId}/logs?after=${logs!.lines[0].seq}`);
		assert.equal(after.body.lines.length, logs!.lines.length - 1, "?after= skips what was read");

		await tern.api("POST", `/api/tasks/${taskId}/cancel`);
		await waitForNoProcesses(marker);
		const kept = await tern.api<Lines>("GET", `/api/tasks/${taskId}/logs`);
		assert.ok(kept.body.lines.length >= 3, "the log is kept after the task ended");
	});

	it("shuts down gracefully: running tasks finish and report, the agent exits 0", async () => {
		const token = await tern.registerTerminal("safe-drain");
		const drainer = await AgentProcess.start(tern, "safe-drain", token, {
			args: ["--allow-commands", "sh", "--drain-timeout", "20"]
		});
		const taskId = await tern.submit({
			terminalId: "safe-drain",
			type: "command",
			payload: { argv: ["sh", "-c", "sleep 1; echo finished"] }
		});
		await tern.waitForStatus(taskId, "PROCESSING");
		const code = await drainer.stop("SIGTERM");
		assert.equal(code, 0, drainer.output.slice(-2000));
		const view = await tern.waitForStatus(taskId, "COMPLETED");
		assert.equal((view.data as { stdout: string }).stdout, "finished\n");
		assert.match(drainer.output, /Shutting down: 1 task\(s\) running, taking no more/);
	});

	it("shuts down gracefully: a task still running after --drain-timeout is killed and reported FAILED", async () => {
		const token = await tern.registerTerminal("safe-drain-2");
		const drainer = await AgentProcess.start(tern, "safe-drain-2", token, {
			args: ["--allow-commands", "sh,python3", "--drain-timeout", "0.5"]
		});
		const marker = `tern-drain-${randomUUID()}`;
		const taskId = await tern.submit({ terminalId: "safe-drain-2", type: "command", payload: stubbornTree(marker) });
		await waitForProcesses(marker, 3);
		await tern.waitForStatus(taskId, "PROCESSING");
		assert.equal(await drainer.stop("SIGTERM"), 0, drainer.output.slice(-2000));
		const view = await tern.waitForStatus(taskId, "FAILED");
		assert.match(view.error ?? "", /The agent shut down before the task finished \(after waiting 0.5 s\): it was killed/);
		await waitForNoProcesses(marker);
	});
});
