/**
 * The console's page table (lib/contracts/console.ts) is read by both sides: the api answers its
 * paths with the console, and the console's router maps each page to a component. Here the two
 * are checked to agree, and the server's aliases to cover every page.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CONSOLE_PAGES } from "../../lib/contracts/console.ts";
import { consoleAliases } from "../../lib/http/console.ts";

const web = (path: string) => fileURLToPath(new URL(`../../web/src/${path}`, import.meta.url));

test("every page has a component in the console's router, and that component exists", () => {
	const router = readFileSync(web("router.ts"), "utf8");
	for (const page of CONSOLE_PAGES) {
		const entry = new RegExp(`^\\s*"?${page.name}"?: \\(\\) => import\\("\\./(pages/[^"]+\\.vue)"\\)`, "m").exec(router);
		assert.ok(entry, `router.ts maps no component to page '${page.name}'`);
		assert.ok(existsSync(web(entry[1]!)), `${entry[1]} (page '${page.name}') does not exist`);
	}
});

test("page names and paths are unique, and the api answers every path but the root with the console", () => {
	assert.equal(new Set(CONSOLE_PAGES.map(p => p.name)).size, CONSOLE_PAGES.length);
	assert.equal(new Set(CONSOLE_PAGES.map(p => p.path)).size, CONSOLE_PAGES.length);
	const aliases = consoleAliases("api.console");
	for (const page of CONSOLE_PAGES.filter(p => p.path !== "/"))
		assert.equal(aliases[`GET ${page.path.slice(1)}`], "api.console", page.path);
	assert.equal(Object.keys(aliases).length, CONSOLE_PAGES.length - 1);
});
