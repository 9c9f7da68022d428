/**
 * A real browser for the console's end-to-end tests: Debian's Chromium driven by
 * playwright-core, headless, against a real Tern. Each page records what went wrong in it
 * (uncaught errors, console errors, refused requests, CSP violations) so that a test can assert
 * there was none; screenshots go to `artifacts/screenshots/<name>-<viewport>.png`.
 *
 * Without Chromium the suites skip with one line saying how to install it, except under
 * `CI=true`, where a missing browser fails the run (`.ci/run` installs it).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const SCREENSHOTS = fileURLToPath(new URL("../../artifacts/screenshots/", import.meta.url));

export const DESKTOP = { name: "desktop", width: 1280, height: 800, mobile: false } as const;
export const PHONE = { name: "phone", width: 390, height: 844, mobile: true } as const;
export type Viewport = typeof DESKTOP | typeof PHONE;

/** Why the browser suites cannot run here, or undefined when they can. Throws under CI. */
export function browserMissing(): string | undefined {
	if (existsSync(CHROMIUM)) return undefined;
	const reason = `Chromium is not at ${CHROMIUM}: install it with 'apt-get install chromium' (or set CHROMIUM_PATH)`;
	if (process.env.CI === "true") throw new Error(reason);
	console.warn(`\n*** SKIPPING the web console's browser tests: ${reason} ***\n`);
	return reason;
}

/** Starts Chromium, after building the console if a source changed since its last build. */
export async function launchBrowser(): Promise<Browser> {
	execFileSync(process.execPath, [fileURLToPath(new URL("../../web/build.ts", import.meta.url)), "--if-stale"], {
		stdio: "inherit"
	});
	return chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		args: [
			"--no-sandbox",
			"--disable-gpu",
			"--disable-quic",
			"--no-first-run",
			"--disable-background-networking",
			"--disable-component-update",
			"--disable-sync",
			// The alarm page plays its sound without a click first, and through a fake output device.
			"--autoplay-policy=no-user-gesture-required",
			"--use-fake-device-for-media-stream",
			"--use-fake-ui-for-media-stream"
		]
	});
}

export interface ConsolePage {
	page: Page;
	context: BrowserContext;
	/** Whatever went wrong in the page: a test asserts it stays empty. */
	problems: string[];
	viewport: Viewport;
}

/**
 * A fresh browser context at `viewport`, on `baseUrl`. With `token`, the session is in place
 * before the first page loads (as a reload after signing in would find it).
 */
export async function openConsole(
	browser: Browser,
	baseUrl: string,
	options: { viewport?: Viewport; token?: string } = {}
): Promise<ConsolePage> {
	const viewport = options.viewport ?? DESKTOP;
	const context = await browser.newContext({
		baseURL: baseUrl,
		viewport: { width: viewport.width, height: viewport.height },
		isMobile: viewport.mobile,
		hasTouch: viewport.mobile,
		locale: "en-GB",
		timezoneId: "UTC"
	});
	if (options.token) await context.addInitScript(token => localStorage.setItem("tern.session", token), options.token);
	const page = await context.newPage();
	page.setDefaultTimeout(10_000);
	const problems: string[] = [];
	page.on("pageerror", err => problems.push(`page error: ${err.message}`));
	page.on("console", msg => {
		const text = msg.text();
		// A 4xx the console asked for and shows (a refusal, a missing object) is not a problem of the page.
		if (msg.type() === "error" && !/the server responded with a status of 4\d\d/.test(text))
			problems.push(`console: ${text}`);
	});
	page.on("requestfailed", req => {
		const failure = req.failure()?.errorText ?? "";
		// Navigations and sockets closed on purpose (a page left, a test's Tern stopped) abort requests.
		if (!/ERR_ABORTED/.test(failure)) problems.push(`request failed: ${req.url()} ${failure}`);
	});
	return { page, context, problems, viewport };
}

/** Signs in through the form, as a person would. */
export async function signIn(page: Page, username: string, password: string): Promise<void> {
	await page.goto("/login");
	await page.getByLabel("Username").fill(username);
	await page.getByLabel("Password").fill(password);
	await page.getByRole("button", { name: "Sign in" }).click();
	await page.waitForURL(url => !url.pathname.startsWith("/login"));
}

/** A full-page screenshot, `artifacts/screenshots/<name>-<viewport>.png`. */
export async function screenshot(cp: ConsolePage, name: string): Promise<string> {
	mkdirSync(SCREENSHOTS, { recursive: true });
	const path = join(SCREENSHOTS, `${name}-${cp.viewport.name}.png`);
	await cp.page.screenshot({ path, fullPage: true });
	return path;
}

/** How many pixels the page is wider than its viewport (0 when nothing sticks out). */
export async function horizontalOverflow(page: Page): Promise<number> {
	return page.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth");
}
