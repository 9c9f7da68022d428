/**
 * Builds the web console into `public/` with Vite. `--if-stale` builds only when a source under
 * `web/` (or a contract the console imports) is newer than the last build, so `npm start` and
 * `npm test` build a fresh clone's console once and then start at once. On an install without
 * the build tools (`npm ci --omit=dev`, where the image's build stage made the bundle), it says
 * so and leaves `public/` as it is.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const built = join(root, "public", "index.html");
const sources = [join(root, "web"), join(root, "lib", "contracts"), join(root, "package-lock.json")];

function newest(path: string): number {
	const info = statSync(path);
	if (!info.isDirectory()) return info.mtimeMs;
	let latest = info.mtimeMs;
	for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
	return latest;
}

const ifStale = process.argv.includes("--if-stale");
if (ifStale && existsSync(built) && statSync(built).mtimeMs >= Math.max(...sources.map(newest))) process.exit(0);

let vite: typeof import("vite");
try {
	vite = await import("vite");
} catch {
	console.warn("web console: Vite is not installed (a production install?), so public/ is left as it is.");
	process.exit(0);
}
const started = Date.now();
await vite.build({ configFile: join(root, "web", "vite.config.ts"), logLevel: "warn" });
console.log(`web console built into public/ in ${Date.now() - started} ms`);
