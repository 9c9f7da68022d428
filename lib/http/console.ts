/**
 * The web console's `index.html` for the console's own paths (`/tasks/…`, `/alarm`): the console
 * routes in the browser, so a reload or a shared link must get the page, not a 404. The file is
 * read once per change of its modification time. When the console has not been built, the
 * answer says how to build it.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { CONSOLE_PAGES } from "../contracts/console.ts";

export const CONSOLE_NOT_BUILT =
	"<!doctype html><meta charset=utf-8><title>Tern</title><h1>Tern is running</h1>" +
	"<p>The web console has not been built: run <code>npm run build:ui</code> (or <code>npm start</code>, which builds it). " +
	"The REST API lives under <code>/api</code>.</p>";

/** moleculer-web aliases (`"GET tasks/:id": action`) for every console page but the root, which the static folder serves. */
export function consoleAliases(action: string): Record<string, string> {
	const aliases: Record<string, string> = {};
	for (const page of CONSOLE_PAGES) if (page.path !== "/") aliases[`GET ${page.path.slice(1)}`] = action;
	return aliases;
}

export class ConsoleIndex {
	private readonly file: string;
	private cached: { mtimeMs: number; html: string } | null = null;

	constructor(folder: string) {
		this.file = join(folder, "index.html");
	}

	/** The page's HTML, or null when the console is not built. */
	async html(): Promise<string | null> {
		let mtimeMs: number;
		try {
			mtimeMs = (await stat(this.file)).mtimeMs;
		} catch {
			return null;
		}
		if (this.cached?.mtimeMs !== mtimeMs) this.cached = { mtimeMs, html: await readFile(this.file, "utf8") };
		return this.cached.html;
	}
}
