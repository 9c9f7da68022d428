/**
 * Never lose or double a result: the real agent behind a proxy that can refuse WebSockets or
 * lose Tern for a while — fallback to HTTP pull and back, reconnects with a result held on disk
 * (across a restart of Tern and across a restart of the agent), a redelivered task acked and
 * not run again, and a run left behind by a killed agent ended by the next one.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TaskPush, TaskView } from "../../lib/contracts.ts";
import { TestTern, waitFor } from "../helpers/tern.ts";
import { AgentProcess, disposeAgents, processesWith, TernProxy } from "./helpers.ts";

describe("agent resilience", () => {
	let tern: TestTern;
	let proxy: TernProxy;
	const tmp = mkdtempSync(join(tmpdir(), "tern-agent-resilience-"));

	before(async () => {
		tern = await TestTern.start({ keep: true });
		proxy = await new TernProxy(tern.port).start();
	});
	afterEach(async () => {
		await disposeAgents();
		proxy.refuseUpgrades = false;
	});
	after(async () => {
		await proxy?.close();
		await tern?.close();
		rmSync(tern.dataDir, { recursive: true, force: true });
		rmSync(tmp, { recursive: true, force: true });
	});

	async function waitForStatus(taskId: string, status: TaskView["status"], agent: AgentProcess, timeoutMs = 15_000) {
		try {
			return await tern.waitForStatus(taskId, status, timeoutMs);
		} catch (err) {
			throw new Error(`${(err as Error).message}\nagent output:\n${agent.output.slice(-4000)}`, { cause: err });
		}
	}

	/** Stops Tern (as a crash-restart would) and starts it again on the same data, behind the same proxy URL. */
	async function restartTern(whileDown: () => Promise<void> = async () => undefined) {
		await tern.stop();
		await whileDown();
		tern = await TestTern.start({ dataDir: tern.dataDir, keep: true });
		proxy.targetPort = tern.port;
	}

	it("falls back to HTTP pull when WebSocket upgrades are refused, and goes back to the socket when they work again", async () => {
		const token = await tern.registerTerminal("fallback-1");
		proxy.refuseUpgrades = true;
		const agent = await AgentProcess.start(tern, "fallback-1", token, {
			url: proxy.url,
			waitOnline: false,
			args: ["--allow-commands", "sh,echo"]
		});
		await agent.waitForLog(/Falling back to HTTP pull .*\(the WebSocket upgrade was answered with HTTP 403\)/);
		assert.ok(proxy.upgradesRefused >= 1);
		assert.equal((await tern.api("GET", "/api/terminals/fallback-1")).body.status, "offline", "no socket is open");

		const quick = await tern.submit({ terminalId: "fallback-1", type: "command", payload: { argv: ["echo", "pulled"] } });
		assert.equal(((await waitForStatus(quick, "COMPLETED", agent)).data as { stdout: string }).stdout, "pulled\n");
		assert.match(agent.output, new RegExp(`Task ${quick} \\(attempt 1, command\\) received over pull`));

		// A task that starts while pulling and ends once the socket is back: same attempt throughout.
		const long = await tern.submit({
			terminalId: "fallback-1",
			type: "command",
			payload: { argv: ["sh", "-c", "sleep 1.5; echo long"] }
		});
		await waitForStatus(long, "PROCESSING", agent);

		proxy.refuseUpgrades = false;
		await tern.waitForTerminal("fallback-1", "online", 10_000);
		await agent.waitForLog(/over socket.io as terminal 'fallback-1': HTTP pull stops/);
		const done = await waitForStatus(long, "COMPLETED", agent);
		assert.equal(done.attempt, 1);
		assert.equal((done.data as { stdout: string }).stdout, "long\n");

		const pushed = await tern.submit({ terminalId: "fallback-1", type: "command", payload: { argv: ["echo", "pushed"] } });
		assert.equal(((await waitForStatus(pushed, "COMPLETED", agent)).data as { stdout: string }).stdout, "pushed\n");
		assert.match(agent.output, new RegExp(`Task ${pushed} \\(attempt 1, command\\) received over socket`));
		assert.ok(proxy.upgradesPassed >= 1);
	});

	it("falls back to HTTP pull when the socket endpoint does not answer at all, after --fallback-after tries", async () => {
		const token = await tern.registerTerminal("fallback-2");
		const closed = await new TernProxy(1).start();
		const socketUrl = closed.url;
		await closed.close();
		const agent = await AgentProcess.start(tern, "fallback-2", token, {
			waitOnline: false,
			args: ["--allow-commands", "echo", "--socket-url", socketUrl, "--fallback-after", "3"]
		});
		await agent.waitForLog(/Falling back to HTTP pull .*\(the socket could not connect 3 time\(s\)\)/);
		assert.equal(agent.count(/Socket connection to .* failed/), 3);
		const taskId = await tern.submit({ terminalId: "fallback-2", type: "command", payload: { argv: ["echo", "via pull"] } });
		assert.equal(((await waitForStatus(taskId, "COMPLETED", agent)).data as { stdout: string }).stdout, "via pull\n");
	});

	it("does not fall back when Tern refuses the token: it says why and keeps trying", async () => {
		const old = await tern.registerTerminal("refused-old");
		await tern.api("POST", "/api/terminals/refused-old/disable");
		const agent = await AgentProcess.start(tern, "refused-old", old, { waitOnline: false, args: ["--fallback-after", "1"] });
		await waitFor(
			() =>
				agent.count(/Tern refused the connection: Terminal 'refused-old' is disabled \(TERMINAL_DISABLED\); retrying/) >=
				2,
			10_000,
			() => `two refusals in the log\n${agent.output}`
		);
		assert.doesNotMatch(agent.output, /Falling back to HTTP pull/);
		assert.ok(agent.running);
		await tern.api("POST", "/api/terminals/refused-old/enable");
		await tern.waitForTerminal("refused-old", "online", 10_000);
	});

	it("keeps its terminal online with heartbeats while idle", async () => {
		const quick = await TestTern.start({ settings: { gateway: { heartbeatTimeout: 600 } } });
		try {
			const token = await quick.registerTerminal("beat-1");
			const agent = await AgentProcess.start(quick, "beat-1", token, { args: ["--heartbeat", "0.2"] });
			const since = Date.now();
			let polls = 0;
			await waitFor(async () => {
				const status = (await quick.api("GET", "/api/terminals/beat-1")).body.status;
				assert.equal(status, "online", `offline after ${Date.now() - since} ms of idling\n${agent.output}`);
				polls++;
				return Date.now() - since > 2000;
			}, 5000);
			assert.ok(polls > 10);
			assert.doesNotMatch(agent.output, /Disconnected/);
			await agent.dispose();
		} finally {
			await quick.close();
		}
	});

	it("reconnects with backoff when the connection drops", async () => {
		const token = await tern.registerTerminal("reconnect-1");
		const agent = await AgentProcess.start(tern, "reconnect-1", token, {
			url: proxy.url,
			args: ["--allow-commands", "echo"]
		});
		proxy.dropTunnels();
		await agent.waitForLog(/Disconnected from Tern \(transport close\); reconnecting/);
		await waitFor(
			() => agent.count(/Connected to .* over socket.io/) >= 2,
			10_000,
			() => `a second connection\n${agent.output}`
		);
		await tern.waitForTerminal("reconnect-1", "online");
		const taskId = await tern.submit({ terminalId: "reconnect-1", type: "command", payload: { argv: ["echo", "again"] } });
		await waitForStatus(taskId, "COMPLETED", agent);
	});

	it("holds a result while Tern is down and sends it once Tern is back", async () => {
		const token = await tern.registerTerminal("held-1");
		const agent = await AgentProcess.start(tern, "held-1", token, { url: proxy.url, args: ["--allow-commands", "sh"] });
		const taskId = await tern.submit({
			terminalId: "held-1",
			type: "command",
			payload: { argv: ["sh", "-c", "sleep 1; echo survived"] }
		});
		await waitForStatus(taskId, "PROCESSING", agent);
		await restartTern(async () => {
			await agent.waitForLog(new RegExp(`Task ${taskId} \\(attempt 1, command\\) success`));
			await agent.waitForLog(new RegExp(`Result of ${taskId}#1 held`));
		});
		const view = await waitForStatus(taskId, "COMPLETED", agent);
		assert.equal((view.data as { stdout: string }).stdout, "survived\n");
		assert.equal(view.attempt, 1);
		await tern.waitForTerminal("held-1", "online", 10_000);
	});

	it("keeps a result on disk across a restart of the agent, and sends it when it comes back", async () => {
		const token = await tern.registerTerminal("held-2");
		const dataDir = mkdtempSync(join(tmpdir(), "tern-agent-held-"));
		const first = await AgentProcess.start(tern, "held-2", token, {
			url: proxy.url,
			dataDir,
			args: ["--allow-commands", "sh"]
		});
		const taskId = await tern.submit({
			terminalId: "held-2",
			type: "command",
			payload: { argv: ["sh", "-c", "sleep 1; echo kept on disk"] }
		});
		await waitForStatus(taskId, "PROCESSING", first);
		await restartTern(async () => {
			await first.waitForLog(new RegExp(`Result of ${taskId}#1 held`));
			assert.equal(await first.stop("SIGTERM"), 0);
			assert.match(first.output, /1 result\(s\) could not be sent: kept in .*ledger\.jsonl/);
			const ledger = readFileSync(join(dataDir, "ledger.jsonl"), "utf8");
			assert.match(ledger, new RegExp(`"taskId":"${taskId}","attempt":1,.*"state":"done"`));
		});
		assert.equal((await tern.query(taskId)).status, "PROCESSING", "Tern still waits for the result");
		const second = await AgentProcess.start(tern, "held-2", token, {
			url: proxy.url,
			dataDir,
			args: ["--allow-commands", "sh"]
		});
		await second.waitForLog(/1 result\(s\) held from before: sent once connected/);
		const view = await waitForStatus(taskId, "COMPLETED", second);
		assert.equal((view.data as { stdout: string }).stdout, "kept on disk\n");
		assert.equal(second.count(/Task .* received/), 0, "nothing was run again");
		await second.dispose();
	});

	it("acks a redelivered (taskId, attempt) without running it again — also after an agent restart", async () => {
		const token = await tern.registerTerminal("dedup-1");
		const dataDir = mkdtempSync(join(tmpdir(), "tern-agent-dedup-"));
		const file = join(tmp, `runs-${randomUUID()}`);
		const args = ["--allow-commands", "sh"];
		let agent = await AgentProcess.start(tern, "dedup-1", token, { url: proxy.url, dataDir, args });
		const taskId = await tern.submit({
			terminalId: "dedup-1",
			type: "command",
			payload: { argv: ["sh", "-c", `echo ran >> ${file}`] }
		});
		await waitForStatus(taskId, "COMPLETED", agent);
		assert.equal(readFileSync(file, "utf8"), "ran\n");

		const view = (await tern.api<TaskView>("GET", `/api/tasks/${taskId}`)).body;
		const push: TaskPush = {
			taskId,
			attempt: view.attempt,
			type: view.type,
			payload: view.payload,
			priority: view.priority,
			timeout: view.timeout,
			ackTimeout: view.ackTimeout,
			createdAt: view.createdAt
		};
		// The gateway delivers the same attempt again, as an at-least-once channel may.
		await tern.broker.call("gateway.push", { terminalId: "dedup-1", event: "task", data: push });
		await agent.waitForLog(new RegExp(`Task ${taskId} \\(attempt 1\\) was delivered again: acked, not run again \\(sent\\)`));

		await agent.stop("SIGTERM");
		agent = await AgentProcess.start(tern, "dedup-1", token, { url: proxy.url, dataDir, args });
		await tern.broker.call("gateway.push", { terminalId: "dedup-1", event: "task", data: push });
		await agent.waitForLog(new RegExp(`Task ${taskId} \\(attempt 1\\) was delivered again: acked, not run again`));

		const again = await tern.query(taskId);
		assert.equal(again.status, "COMPLETED");
		assert.equal(again.attempt, 1);
		assert.equal(readFileSync(file, "utf8"), "ran\n", "the command ran once");
		await agent.dispose();
	});

	it("ends what a killed agent left running when it starts again, and reports the task FAILED rather than run it twice", async () => {
		const token = await tern.registerTerminal("crash-1");
		const dataDir = mkdtempSync(join(tmpdir(), "tern-agent-crash-"));
		const marker = `tern-crash-${randomUUID()}`;
		const args = ["--allow-commands", "sh,python3"];
		const first = await AgentProcess.start(tern, "crash-1", token, { url: proxy.url, dataDir, args });
		const taskId = await tern.submit({
			terminalId: "crash-1",
			type: "command",
			payload: { argv: ["sh", "-c", `python3 -c "import time; time.sleep(300)" ${marker}; echo never`, marker] }
		});
		await waitFor(
			() => processesWith(marker).length >= 2,
			10_000,
			() => `the task's processes\n${first.output}`
		);
		await waitForStatus(taskId, "PROCESSING", first);
		await first.stop("SIGKILL");
		assert.ok(processesWith(marker).length >= 2, "the task outlived the killed agent");

		const second = await AgentProcess.start(tern, "crash-1", token, { url: proxy.url, dataDir, args });
		await second.waitForLog(
			new RegExp(`Task ${taskId} \\(attempt 1\\) left running by an earlier agent: killing its process group`)
		);
		await waitFor(
			() => processesWith(marker).length === 0,
			10_000,
			() => `no process left: ${processesWith(marker).join(" | ")}`
		);
		const view = await waitForStatus(taskId, "FAILED", second);
		assert.match(view.error ?? "", /The agent stopped while the task ran; it was not run again/);
		await second.dispose();
	});
});
