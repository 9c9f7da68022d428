/**
 * The agent's SDK in this process against a real Tern: the same Agent the CLI runs, with its
 * connection tampered with to lose an ack — Tern then hands the task out again as a new attempt,
 * and that attempt takes the run over instead of running the task a second time.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadRunners } from "../../agent/runners/index.ts";
import { Agent } from "../../agent/sdk/agent.ts";
import { loadConfig } from "../../agent/sdk/config.ts";
import { createLogger } from "../../agent/sdk/log.ts";
import { TernError } from "../../agent/sdk/rest.ts";
import { TestTern, waitFor } from "../helpers/tern.ts";

describe("agent SDK", () => {
	let tern: TestTern;
	const dir = mkdtempSync(join(tmpdir(), "tern-agent-sdk-"));

	before(async () => {
		tern = await TestTern.start();
	});
	after(async () => {
		await tern?.close();
		rmSync(dir, { recursive: true, force: true });
	});

	it("lets a later attempt of a task running here take the run over when Tern missed the ack (not run twice)", async () => {
		const token = await tern.registerTerminal("sdk-1");
		const { config } = loadConfig(
			[
				"--url",
				tern.url,
				"--token",
				token,
				"--data-dir",
				join(dir, "data"),
				"--allow-commands",
				"sh",
				"--runners",
				"command"
			],
			{}
		);
		const lines: string[] = [];
		const logger = createLogger("debug", line => lines.push(line));
		const agent = new Agent({ config: config!, runners: await loadRunners(config!, logger), logger });
		// The first ack of attempt 1 is lost on the way.
		const ack = agent.terminal.ack.bind(agent.terminal);
		let lost = 0;
		agent.terminal.ack = message =>
			message.attempt === 1 && lost++ === 0
				? Promise.reject(new TernError("lost on the way", "NOT_CONNECTED", 0, false))
				: ack(message);
		agent.start();
		try {
			await tern.waitForTerminal("sdk-1", "online");
			const file = join(dir, "runs");
			const taskId = await tern.submit({
				terminalId: "sdk-1",
				type: "command",
				ackTimeout: 0.4,
				payload: { argv: ["sh", "-c", `echo ran >> ${file}; sleep 1.5; echo done`] }
			});
			const view = await tern.waitForStatus(taskId, "COMPLETED", 10_000);
			assert.equal(view.attempt, 2, "Tern handed it out again after the missed ack");
			assert.equal((view.data as { stdout: string }).stdout, "done\n");
			assert.equal(readFileSync(file, "utf8"), "ran\n", "the command ran once");
			assert.equal(agent.stats.adopted, 1);
			assert.equal(agent.stats.started, 1);
			assert.ok(
				lines.some(l => /a later attempt of a task running here; it takes the run over/.test(l)),
				lines.join("")
			);
		} finally {
			await agent.shutdown();
		}
		await waitFor(() => agent.terminal.state === "stopped");
	});
});
