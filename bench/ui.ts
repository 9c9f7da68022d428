/**
 * Benchmark of the web console: what it weighs and how soon the dashboard shows its data.
 *
 *   npm run bench:ui              # 10 cold loads of the dashboard
 *   npm run bench:ui -- --loads 30
 *
 * 1. The bundle: every file Vite wrote to public/, raw and gzipped (level 9, what a proxy in
 *    front of Tern would send), and the part the dashboard needs on a cold first load — the
 *    files Chromium fetched from the console for it.
 * 2. Time to first render: a real embedded Tern, Debian's Chromium, a stored session; each load
 *    in a fresh browser context (an empty cache), from navigation start to the dashboard's
 *    numbers from `/api/system/status` painted, as the page's own `performance.now()` reads it.
 *
 * Prints a table and writes bench/results/ui.json.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { parseArgs } from "node:util";
import { TestTern } from "../test/helpers/tern.ts";
import { DESKTOP, launchBrowser, openConsole } from "../test/support/browser.ts";
import { describeMachine, loadAverage } from "./lib/machine.ts";
import { round, summarize, table } from "./lib/stats.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const PUBLIC = join(root, "public");
const { values: args } = parseArgs({ options: { loads: { type: "string", default: "10" } } });
const LOADS = Math.max(1, Number(args.loads));

interface FileSize {
	file: string;
	bytes: number;
	gzip: number;
}

function files(dir: string): string[] {
	return readdirSync(dir).flatMap(name => {
		const path = join(dir, name);
		return statSync(path).isDirectory() ? files(path) : [path];
	});
}

function sizeOf(path: string): FileSize {
	const data = readFileSync(path);
	return { file: relative(PUBLIC, path), bytes: data.length, gzip: gzipSync(data, { level: 9 }).length };
}

const kib = (n: number) => round(n / 1024, 1);
const load0 = loadAverage();
execFileSync(process.execPath, [join(root, "web", "build.ts")], { stdio: "inherit" });
const bundle = files(PUBLIC).map(sizeOf);
const total = (list: FileSize[], ext: RegExp) =>
	list
		.filter(f => ext.test(f.file))
		.reduce((sum, f) => ({ bytes: sum.bytes + f.bytes, gzip: sum.gzip + f.gzip }), { bytes: 0, gzip: 0 });

const tern = await TestTern.start();
const browser = await launchBrowser();
const renders: number[] = [];
let firstLoad: FileSize[] = [];
try {
	for (let i = 0; i < LOADS; i++) {
		const cp = await openConsole(browser, tern.url, { token: tern.adminToken, viewport: DESKTOP });
		const fetched = new Set<string>();
		cp.page.on("response", res => {
			const url = new URL(res.url());
			if (url.origin === tern.url && !url.pathname.startsWith("/api") && !url.pathname.startsWith("/socket.io"))
				fetched.add(url.pathname === "/" ? "index.html" : url.pathname.slice(1));
		});
		await cp.page.goto("/");
		// The first of the status page's numbers painted: the online count is no longer "—".
		await cp.page.getByTestId("terminals-online").filter({ hasText: /^\d+$/ }).waitFor();
		renders.push(await cp.page.evaluate<number>("performance.now()"));
		if (i === 0) firstLoad = [...fetched].map(file => sizeOf(join(PUBLIC, file)));
		if (cp.problems.length) throw new Error(`the dashboard had problems: ${cp.problems.join("; ")}`);
		await cp.context.close();
	}
} finally {
	await browser.close();
	await tern.stop();
}

const render = summarize(renders);
const js = total(bundle, /\.js$/);
const css = total(bundle, /\.css$/);
const all = total(bundle, /./);
const first = total(firstLoad, /./);
const rows: (string | number)[][] = [
	["bundle: JavaScript", kib(js.bytes), kib(js.gzip)],
	["bundle: CSS", kib(css.bytes), kib(css.gzip)],
	["bundle: everything (incl. fonts)", kib(all.bytes), kib(all.gzip)],
	[`dashboard's first load (${firstLoad.length} files)`, kib(first.bytes), kib(first.gzip)]
];
console.log(table(["size", "KiB", "KiB gzipped"], rows));
console.log();
console.log(
	table(
		["time to first render of the dashboard", "ms"],
		[
			["median", round(render.p50, 1)],
			["p90", round(render.p90, 1)],
			["max", round(render.max, 1)],
			["loads", render.count]
		]
	)
);

mkdirSync(join(root, "bench", "results"), { recursive: true });
writeFileSync(
	join(root, "bench", "results", "ui.json"),
	`${JSON.stringify(
		{
			at: new Date().toISOString(),
			machine: describeMachine(load0),
			bundle: { files: bundle, js, css, all },
			dashboardFirstLoad: { files: firstLoad, ...first },
			timeToFirstRenderMs: { ...render, samples: renders.map(v => round(v, 1)) }
		},
		null,
		2
	)}\n`
);
console.log("\nwrote bench/results/ui.json");
