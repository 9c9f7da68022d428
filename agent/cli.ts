/**
 * tern-agent: makes this machine a Tern terminal.
 *
 *   TERN_TOKEN=$TERMINAL_TOKEN npm run agent -- --url https://tern.example.com --allow-commands uptime,df
 *   npm run agent -- --url https://tern.example.com --token-file /etc/tern/token --ca /etc/tern/ca.pem
 *
 * The token comes from TERN_TOKEN or --token-file: `--token` still works but puts the token in
 * the process list (and npm's banner), so the agent warns about it. `--ca` (TERN_CA) trusts a
 * private CA for https:// and wss://, as NODE_EXTRA_CA_CERTS does.
 *
 * Options come from the command line, TERN_* variables or a JSON config file (`--help` lists
 * them). SIGTERM or SIGINT stops it gracefully: no more work is taken, running tasks finish (up
 * to --drain-timeout), results are sent or kept on disk for the next start. A second signal
 * stops it at once.
 */
import { readFileSync } from "node:fs";
import { loadRunners, UnknownRunnerError } from "./runners/index.ts";
import { Agent } from "./sdk/agent.ts";
import { ConfigError, loadConfig, usage } from "./sdk/config.ts";
import { createLogger } from "./sdk/log.ts";

function version(): string {
	try {
		return (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
	} catch {
		return "unknown";
	}
}

async function main(): Promise<number> {
	let parsed;
	try {
		parsed = loadConfig(process.argv.slice(2));
	} catch (err) {
		if (err instanceof ConfigError) {
			process.stderr.write(`tern-agent: ${err.message}\n`);
			return 2;
		}
		throw err;
	}
	if (parsed.help) {
		process.stdout.write(usage() + "\n");
		return 0;
	}
	if (parsed.version) {
		process.stdout.write(`tern-agent ${version()}\n`);
		return 0;
	}
	const config = parsed.config!;
	const logger = createLogger(config.logLevel);
	if (config.tokenFrom === "argv")
		logger.warn("--token is visible to every user of this machine (ps, npm's banner): use TERN_TOKEN or --token-file");
	let runners;
	try {
		runners = await loadRunners(config, logger);
	} catch (err) {
		if (err instanceof UnknownRunnerError) {
			process.stderr.write(`tern-agent: --runners: ${err.message}\n`);
			return 2;
		}
		throw err;
	}
	if (runners.has("command") && config.allowCommands.length === 0)
		logger.info("No --allow-commands given: every command task will be refused");
	let agent: Agent;
	try {
		agent = new Agent({ config, runners, logger });
	} catch (err) {
		process.stderr.write(`tern-agent: ${(err as Error).message}\n`);
		return 1;
	}
	agent.start();
	return new Promise<number>(resolve => {
		let stopping = false;
		const stop = (signal: string) => {
			if (stopping) {
				logger.warn(`${signal} again: stopping now, killing running tasks`);
				agent.killAll();
				resolve(130);
				return;
			}
			stopping = true;
			logger.info(`${signal}: graceful shutdown`);
			agent.shutdown().then(
				() => resolve(0),
				err => {
					logger.error(`Shutdown failed: ${(err as Error).stack ?? String(err)}`);
					resolve(1);
				}
			);
		};
		process.on("SIGTERM", () => stop("SIGTERM"));
		process.on("SIGINT", () => stop("SIGINT"));
	});
}

main().then(
	code => process.exit(code),
	err => {
		process.stderr.write(`tern-agent: ${(err as Error)?.stack ?? String(err)}\n`);
		process.exit(1);
	}
);
