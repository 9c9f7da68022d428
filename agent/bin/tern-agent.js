#!/usr/bin/env node
// `npx tern-agent`: runs agent/cli.ts with Node's TypeScript type stripping (Node 22.6+; on by
// default from 23.6, switched on here for 22).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 6)) {
	process.stderr.write(`tern-agent needs Node.js 22.6 or newer; this is ${process.version}\n`);
	process.exit(1);
}
const cli = fileURLToPath(new URL("../cli.ts", import.meta.url));
if (process.features.typescript) {
	await import(cli);
} else {
	const result = spawnSync(process.execPath, ["--experimental-strip-types", "--no-warnings", cli, ...process.argv.slice(2)], {
		stdio: "inherit"
	});
	process.exit(result.status ?? 1);
}
