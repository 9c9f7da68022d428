/**
 * The status page and the configuration endpoints against a real Tern: what a person sees at a
 * glance, the configuration with its secrets hidden, and settings changed while Tern runs —
 * applied at once, refused when out of range, kept across a restart.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestTern, waitFor } from "../helpers/tern.ts";
import type { SystemConfigView, SystemStatus } from "../../lib/contracts.ts";
import pkg from "../../package.json" with { type: "json" };

async function login(tern: TestTern, username: string, role: string): Promise<string> {
	const password = `${username}-password-1`;
	await tern.api("POST", "/api/users", { username, password, role });
	return (await tern.api<{ token: string }>("POST", "/api/auth/login", { username, password }, null)).body.token;
}

describe("system status and configuration", () => {
	let tern: TestTern;

	before(async () => {
		tern = await TestTern.start({ keep: true });
	});
	after(() => tern.close());

	it("the status page shows version, mode, nodes, terminals, tasks and the last minute's rates", async () => {
		await tern.registerTerminal("s-offline");
		const terminal = await tern.connectTerminal("s-online", await tern.registerTerminal("s-online"));
		await tern.api("POST", "/api/terminals", { id: "s-disabled" });
		await tern.api("POST", "/api/terminals/s-disabled/disable");
		const done = await tern.submit({ terminalId: "s-online", type: "echo" });
		const task = await terminal.nextTask();
		await terminal.ack(task);
		await terminal.result(task, "failed", null, { error: "boom" });
		await tern.waitForStatus(done, "FAILED");

		let status!: SystemStatus;
		await waitFor(
			async () => {
				status = (await tern.api<SystemStatus>("GET", "/api/system/status")).body;
				return status.rates.minute.failed === 1;
			},
			5000,
			() => `the failure among the rates: ${JSON.stringify(status)}`
		);
		assert.equal(status.version, pkg.version);
		assert.equal(status.mode, "embedded");
		assert.ok(status.uptimeSeconds >= 0);
		assert.equal(status.nodes.length, 1);
		assert.equal(status.nodes[0].available, true);
		for (const service of ["api", "dispatcher", "gateway", "monitor", "scheduler"])
			assert.ok(status.nodes[0].services.includes(service), service);
		assert.deepEqual(status.terminals, { online: 1, offline: 1, disabled: 1 });
		assert.equal(status.tasks.FAILED, 1);
		assert.deepEqual(status.rates.minute, { submitted: 1, completed: 0, failed: 1, timedOut: 0 });
		assert.deepEqual(status.rates.hour, status.rates.minute);
		assert.equal(status.alerts.firing, 0);
		terminal.close();
	});

	it("a viewer reads the status page; only an admin reads the configuration, secrets as ***", async () => {
		const viewer = await login(tern, "status-viewer", "viewer");
		assert.equal((await tern.api("GET", "/api/system/status", undefined, viewer)).status, 200);
		const refused = await tern.api("GET", "/api/system/config", undefined, viewer);
		assert.equal(refused.status, 403);
		assert.equal(refused.body.type, "FORBIDDEN");
		assert.equal((await tern.api("GET", "/api/system/status", undefined, null)).status, 401);
		const version = await tern.api("GET", "/api/version", undefined, null);
		assert.equal(version.status, 200);
		assert.deepEqual(Object.keys(version.body).sort(), ["commit", "mode", "nodeID", "version"]);
		assert.equal(version.body.version, pkg.version);
		assert.equal(version.body.mode, "embedded");
		assert.equal(typeof version.body.nodeID, "string");
		// This checkout's commit, read from .git (a clone has one).
		assert.match(String(version.body.commit), /^[0-9a-f]{40}$/);

		const reply = await tern.api<SystemConfigView>("GET", "/api/system/config");
		assert.equal(reply.status, 200);
		assert.equal(reply.body.config.jwtSecret, "***");
		assert.equal(reply.body.config.adminPassword, "***");
		assert.equal(reply.body.config.port, 0);
		assert.equal(reply.body.runtime.maxResultBytes, 1024 * 1024);
		assert.ok(!JSON.stringify(reply.body).includes("test-admin-password"));
	});

	it("a bad change is refused naming the field, and changes nothing", async () => {
		for (const [body, field] of [
			[{ maxResultBytes: 0 }, "maxResultBytes"],
			[{ evaluateInterval: "fast" }, "evaluateInterval"],
			[{ jwtSecret: "x" }, "jwtSecret"]
		] as const) {
			const reply = await tern.api("PUT", "/api/system/config", body);
			assert.equal(reply.status, 422, JSON.stringify(reply.body));
			assert.equal(reply.body.type, "VALIDATION_ERROR");
			assert.match(JSON.stringify(reply.body), new RegExp(field));
		}
		const viewer = await login(tern, "config-viewer", "viewer");
		assert.equal((await tern.api("PUT", "/api/system/config", { maxResultBytes: 10 }, viewer)).status, 403);
		assert.equal((await tern.api<SystemConfigView>("GET", "/api/system/config")).body.runtime.maxResultBytes, 1024 * 1024);
	});

	it("a smaller result limit applies at once, and survives a restart", async () => {
		const reply = await tern.api<SystemConfigView>("PUT", "/api/system/config", { maxResultBytes: 64 });
		assert.equal(reply.status, 200, JSON.stringify(reply.body));
		assert.equal(reply.body.runtime.maxResultBytes, 64);

		const token = await tern.registerTerminal("s-limit");
		const terminal = await tern.connectTerminal("s-limit", token);
		const id = await tern.submit({ terminalId: "s-limit", type: "echo" });
		const task = await terminal.nextTask();
		await terminal.ack(task);
		await terminal.result(task, "success", { text: "x".repeat(200) });
		const failed = await tern.waitForStatus(id, "FAILED");
		assert.match(String(failed.error), /RESULT_TOO_LARGE|larger than/);
		terminal.close();

		tern = await tern.restart();
		assert.equal((await tern.api<SystemConfigView>("GET", "/api/system/config")).body.runtime.maxResultBytes, 64);
		const again = await tern.connectTerminal("s-limit", token);
		const id2 = await tern.submit({ terminalId: "s-limit", type: "echo" });
		const task2 = await again.nextTask();
		await again.ack(task2);
		await again.result(task2, "success", { text: "x".repeat(200) });
		await tern.waitForStatus(id2, "FAILED");
		again.close();
	});
});
