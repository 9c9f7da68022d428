/**
 * Capabilities: an agent advertises the runners it has in its handshake, and Tern routes
 * selector tasks only to terminals that have the task's runner. Docker is the runner whose
 * presence depends on the machine: one agent here has an engine (a stand-in CLI), one has not.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestTern } from "../helpers/tern.ts";
import { AgentProcess, disposeAgents } from "./helpers.ts";

describe("agent capabilities", () => {
	let tern: TestTern;
	let plain: AgentProcess;
	let docker: AgentProcess;
	const bin = mkdtempSync(join(tmpdir(), "fake-docker-"));

	before(async () => {
		tern = await TestTern.start();
		writeFileSync(
			join(bin, "docker"),
			[
				"#!/bin/sh",
				'if [ "$1" = version ]; then echo 27.0.0; exit 0; fi',
				'if [ "$1" = run ]; then for last; do :; done; echo "container says $last"; exit 0; fi',
				"exit 1"
			].join("\n")
		);
		chmodSync(join(bin, "docker"), 0o755);
		const args = ["--allow-commands", "echo"];
		plain = await AgentProcess.start(
			tern,
			"cap-plain",
			await tern.registerTerminal("cap-plain", { labels: { pool: "cap" } }),
			{
				args
			}
		);
		docker = await AgentProcess.start(
			tern,
			"cap-docker",
			await tern.registerTerminal("cap-docker", { labels: { pool: "cap" } }),
			{
				args,
				env: { PATH: `${bin}:${process.env.PATH}` }
			}
		);
		await plain.waitForLog(/runners command, script, http,/);
		await docker.waitForLog(/runners command, script, http, docker,/);
	});
	after(async () => {
		await disposeAgents();
		await tern?.close();
		rmSync(bin, { recursive: true, force: true });
	});

	it("gets selector tasks of a runner only to the terminals that have it", async () => {
		const ids: string[] = [];
		for (let i = 0; i < 4; i++)
			ids.push(
				await tern.submit({
					selector: { labels: { pool: "cap" }, strategy: "round_robin" },
					type: "docker",
					payload: { image: "alpine:3.20", args: ["echo", `n${i}`] }
				})
			);
		for (const [i, id] of ids.entries()) {
			const view = await tern.waitForStatus(id, "COMPLETED", 10_000);
			assert.equal((view.data as { stdout: string }).stdout, `container says n${i}\n`);
			assert.equal((await tern.api("GET", `/api/tasks/${id}`)).body.terminalId, "cap-docker");
		}
		assert.equal(plain.count(/received over/), 0, "the agent without docker got none of them");
	});

	it("still shares the runners both have", async () => {
		const ids: string[] = [];
		for (let i = 0; i < 4; i++)
			ids.push(
				await tern.submit({
					selector: { labels: { pool: "cap" }, strategy: "round_robin" },
					type: "command",
					payload: { argv: ["echo", `c${i}`] }
				})
			);
		const holders = new Set<string>();
		for (const id of ids) {
			await tern.waitForStatus(id, "COMPLETED", 10_000);
			holders.add((await tern.api("GET", `/api/tasks/${id}`)).body.terminalId);
		}
		assert.deepEqual([...holders].sort(), ["cap-docker", "cap-plain"]);
	});

	it("answers a task pinned to a terminal without the runner FAILED, naming the runner", async () => {
		const id = await tern.submit({ terminalId: "cap-plain", type: "docker", payload: { image: "alpine:3.20" } });
		const view = await tern.waitForStatus(id, "FAILED", 10_000);
		assert.match(view.error ?? "", /Runner 'docker' is not available on this terminal/);
	});
});
