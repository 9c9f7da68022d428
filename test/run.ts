/**
 * The test suites, as `npm test` runs them after its checks: first every file that needs no
 * server (unit, embedded integration, agent, console), then the files with suites on MariaDB and
 * NATS (those that call `needs(…)`, test/support/servers.ts). When a server does not answer, one
 * line says so and how to start it, and its suites are skipped — except under CI=true, where that
 * is a failure before anything runs.
 *
 *   node test/run.ts                               # everything
 *   node test/run.ts test/integration/rest.test.ts # these files only
 */
import { spawnSync } from "node:child_process";
import { globSync, readFileSync } from "node:fs";
import { HOW_TO_START, missingServers } from "./support/servers.ts";

const NODE_TEST = ["--test", "--test-reporter=spec", "--test-concurrency=1", "--test-timeout=120000"];

function skipLine(missing: Awaited<ReturnType<typeof missingServers>>): string {
	const what = missing.map(m => `${m.server} (${m.url})`).join(" and ");
	const how = missing.map(m => `  ${m.server}: ${HOW_TO_START[m.server]}`).join("\n");
	return `\n*** SKIPPING the suites that need ${what}: not answering. To run them, start ${missing.length === 1 ? "it" : "them"}:\n${how}\n`;
}

function run(title: string, files: string[]): number {
	if (files.length === 0) return 0;
	console.log(`\n=== ${title}: ${files.length} file${files.length === 1 ? "" : "s"}\n`);
	return spawnSync(process.execPath, [...NODE_TEST, ...files], { stdio: "inherit" }).status ?? 1;
}

const files = (process.argv.length > 2 ? process.argv.slice(2) : globSync("test/**/*.test.ts")).sort();
const needServers = (file: string) => /\bneeds\(/.test(readFileSync(file, "utf8"));
const missing = await missingServers();
if (missing.length > 0) {
	if (process.env.CI === "true") {
		console.error(`${skipLine(missing)}CI=true: a missing server is a failure.`);
		process.exit(1);
	}
	console.log(skipLine(missing));
}
const standalone = run(
	"suites that need no server",
	files.filter(f => !needServers(f))
);
const servers = run(
	missing.length > 0 ? "suites on MariaDB and NATS (some skipped)" : "suites on MariaDB and NATS",
	files.filter(needServers)
);
if (missing.length > 0) console.log(skipLine(missing));
process.exit(standalone || servers);
