/**
 * `npm run cluster` as a user runs it: the script starts every node of the layout on the
 * machine's NATS and MariaDB and says when each is ready; a task submitted to the api is
 * completed by the real agent connected to a gateway; `npm run cluster:stop` from another shell
 * stops every node, and the script ends with them.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Database, MYSQL_SERVER, NATS_URL, freePort } from "../support/node-process.ts";
import { restCall } from "../support/rest.ts";
import { needs } from "../support/servers.ts";
import { until, waitFor } from "../support/wait.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Output of a child process, kept whole, with a listener per line. */
class Output {
	text = "";
	constructor(child: ChildProcess) {
		for (const stream of [child.stdout!, child.stderr!]) stream.on("data", chunk => (this.text += String(chunk)));
	}
}

describe("npm run cluster", { skip: needs("mariadb", "nats"), timeout: 180_000 }, () => {
	const dir = mkdtempSync(join(tmpdir(), "tern-local-cluster-"));
	const database = new Database(`tern_local_${process.pid}`);
	let port: number;
	let cluster: ChildProcess;
	let output: Output;
	let agent: ChildProcess | undefined;
	const args = () => ["--dir", dir, "--database", database.name, "--nats", NATS_URL, "--mysql", MYSQL_SERVER];

	before(async () => {
		// The api, two gateways and nine health ports from here.
		port = ((await freePort()) % 20_000) + 20_000;
		cluster = spawn(process.execPath, ["cluster/local.ts", ...args(), "--port", String(port), "--loglevel", "warn"], {
			cwd: ROOT,
			stdio: ["ignore", "pipe", "pipe"]
		});
		output = new Output(cluster);
	});
	after(async () => {
		agent?.kill("SIGKILL");
		if (cluster.exitCode === null) spawnSync(process.execPath, ["cluster/local.ts", "stop", "--dir", dir], { cwd: ROOT });
		await database.drop();
		rmSync(dir, { recursive: true, force: true });
	});

	it("starts every node with a line each, completes a task through a gateway, and stops with one command", async () => {
		await until(
			[cluster.stdout!, cluster.stderr!],
			["data"],
			() => output.text.includes("Tern cluster up") || cluster.exitCode !== null,
			150_000,
			() => `the cluster to come up:\n${output.text}`
		);
		for (const node of [
			"api",
			"gateway-1",
			"gateway-2",
			"dispatcher-1",
			"dispatcher-2",
			"scheduler",
			"cache",
			"monitor",
			"alert"
		])
			assert.match(output.text, new RegExp(`\\[\\d/9\\] ${node} ready`), node);
		const password = /\(admin \/ ([^)]+)\)/.exec(output.text)![1];

		const api = `http://127.0.0.1:${port}`;
		const login = await restCall<{ token: string }>(`${api}/api/auth/login`, "POST", { username: "admin", password });
		assert.equal(login.status, 200, JSON.stringify(login.body));
		const admin = login.body.token;
		const version = await restCall<{ mode: string }>(`${api}/api/version`, "GET");
		assert.equal(version.body.mode, "cluster");
		const terminal = await restCall<{ token: string }>(`${api}/api/terminals`, "POST", { id: "local-1" }, admin);
		assert.equal(terminal.status, 201, JSON.stringify(terminal.body));
		agent = spawn(
			process.execPath,
			[
				"agent/cli.ts",
				"--url",
				`http://127.0.0.1:${port + 1}`,
				"--data-dir",
				join(dir, "agent"),
				"--allow-commands",
				"echo"
			],
			{
				cwd: ROOT,
				env: { ...process.env, TERN_TOKEN: terminal.body.token },
				stdio: "ignore"
			}
		);
		const submitted = await restCall<{ taskId: string }>(
			`${api}/api/task/submit`,
			"POST",
			{ terminalId: "local-1", type: "command", payload: { argv: ["echo", "through the cluster"] } },
			admin
		);
		assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
		let view: { status: string; data?: { stdout?: string } } = { status: "" };
		await waitFor(
			async () => {
				view = (await restCall(`${api}/api/tasks/${submitted.body.taskId}`, "GET", undefined, admin)).body;
				return view.status === "COMPLETED" || view.status === "FAILED";
			},
			30_000,
			() => `the task to end (last: ${view.status})`
		);
		assert.equal(view.status, "COMPLETED", JSON.stringify(view));
		assert.equal(view.data?.stdout, "through the cluster\n");

		const exited = new Promise<number | null>(resolve => cluster.once("exit", resolve));
		const stop = spawnSync(process.execPath, ["cluster/local.ts", "stop", "--dir", dir], { cwd: ROOT, encoding: "utf8" });
		assert.equal(stop.status, 0, stop.stderr);
		assert.match(stop.stdout, /Cluster stopped/);
		assert.equal(await exited, 0, output.text);
		assert.match(output.text, /Every node has stopped/);
		assert.doesNotMatch(output.text, /the others go on/);
	});
});
