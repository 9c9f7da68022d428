/**
 * A real Prometheus (Debian's /usr/bin/prometheus) scrapes a Tern's GET /metrics every second;
 * its query API must then answer what Tern counted. Skips, saying why, when Prometheus is absent.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestTern, waitFor } from "../helpers/tern.ts";
import { freePort } from "../support/node-process.ts";

const PROMETHEUS = "/usr/bin/prometheus";
const absent = !existsSync(PROMETHEUS);

interface QueryAnswer {
	status: string;
	data: { result: { metric: Record<string, string>; value: [number, string] }[] };
}

describe(
	"Prometheus scrapes Tern",
	{ skip: absent ? `${PROMETHEUS} is not installed (apt-get install prometheus)` : false },
	() => {
		let tern: TestTern;
		let prometheus: ChildProcess;
		let dir: string;
		let api: string;
		const output: string[] = [];

		before(async () => {
			tern = await TestTern.start();
			dir = mkdtempSync(join(tmpdir(), "tern-prometheus-"));
			const port = await freePort();
			api = `http://127.0.0.1:${port}`;
			writeFileSync(
				join(dir, "prometheus.yml"),
				[
					"global:",
					"  scrape_interval: 1s",
					"scrape_configs:",
					"  - job_name: tern",
					"    static_configs:",
					`      - targets: ["127.0.0.1:${tern.port}"]`,
					""
				].join("\n")
			);
			prometheus = spawn(
				PROMETHEUS,
				[
					`--config.file=${join(dir, "prometheus.yml")}`,
					`--storage.tsdb.path=${join(dir, "data")}`,
					`--web.listen-address=127.0.0.1:${port}`
				],
				{ stdio: ["ignore", "pipe", "pipe"] }
			);
			for (const stream of [prometheus.stdout!, prometheus.stderr!])
				stream.on("data", (chunk: Buffer) => output.push(...chunk.toString().split("\n").slice(0, 5)));
		});

		after(async () => {
			if (prometheus && prometheus.exitCode === null) {
				const exited = new Promise(resolve => prometheus.once("exit", resolve));
				prometheus.kill("SIGTERM");
				await exited;
			}
			await tern?.close();
			if (dir) rmSync(dir, { recursive: true, force: true });
		});

		it("answers tern_tasks_total from its scrapes", async () => {
			const token = await tern.registerTerminal("p-1");
			const terminal = await tern.connectTerminal("p-1", token);
			const ids: string[] = [];
			for (let i = 0; i < 3; i++) ids.push(await tern.submit({ type: "shell", terminalId: "p-1" }));
			for (let i = 0; i < 3; i++) {
				const task = await terminal.nextTask();
				await terminal.ack(task);
				await terminal.result(task);
			}
			for (const id of ids) await tern.waitForStatus(id, "COMPLETED");

			const query = `${api}/api/v1/query?query=${encodeURIComponent('tern_tasks_total{status="COMPLETED"}')}`;
			let answer: QueryAnswer | null = null;
			await waitFor(
				async () => {
					if (prometheus.exitCode !== null) throw new Error(`prometheus exited:\n${output.slice(-20).join("\n")}`);
					try {
						answer = (await (await fetch(query)).json()) as QueryAnswer;
					} catch {
						return false;
					}
					return answer.status === "success" && answer.data.result.some(r => r.value[1] === "3");
				},
				30_000,
				() =>
					`Prometheus to answer tern_tasks_total = 3 (last: ${JSON.stringify(answer)})\n${output.slice(-10).join("\n")}`
			);
			const series = answer!.data.result[0].metric;
			assert.equal(series.job, "tern");
			assert.equal(series.nodeID, tern.broker.nodeID);
			assert.equal(series.type, "shell");
		});
	}
);
