/**
 * Starts a Tern node: `npm start` (embedded: every service, SQLite in ./data), or one part of
 * a cluster when TRANSPORTER, DB_URI and SERVICES say so. `--repl` opens the Moleculer REPL
 * with Tern's commands.
 */
import { loadConfig } from "./moleculer.config.ts";
import { startNode } from "./node.ts";
import { startHealthServer } from "./lib/health.ts";

const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
	console.error(`Tern needs Node.js 22.18 or newer (this is ${process.version}); run it through npm, which brings Node 24.`);
	process.exit(1);
}

const config = loadConfig();
const broker = await startNode({ config });
let stopping = false;
if (config.healthPort !== null) await startHealthServer(broker, config.healthPort, () => broker.started && !stopping);
if (config.services.includes("api"))
	broker.logger.info(`Tern is up: http://localhost:${config.port}/ (${config.transporter ? "cluster" : "embedded"} mode)`);
if (process.argv.includes("--repl")) await broker.repl();

for (const signal of ["SIGINT", "SIGTERM"] as const) {
	process.once(signal, () => {
		broker.logger.info(`${signal}: stopping`);
		stopping = true;
		broker.stop().then(
			() => process.exit(0),
			() => process.exit(1)
		);
	});
}
