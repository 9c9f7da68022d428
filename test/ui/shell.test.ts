/**
 * The console's frame in a real browser: signing in, a session that survives a reload, signing
 * out, the live channel's state, and every page of the console's table answering with the console.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { ADMIN_PASSWORD, TestTern } from "../helpers/tern.ts";
import { CONSOLE_PAGES } from "../../lib/contracts/console.ts";
import { DESKTOP, PHONE, browserMissing, launchBrowser, openConsole, screenshot, signIn } from "../support/browser.ts";

describe("web console: the frame", { skip: browserMissing() }, () => {
	let tern: TestTern;
	let browser: Browser;

	before(async () => {
		tern = await TestTern.start();
		browser = await launchBrowser();
	});
	after(async () => {
		await browser?.close();
		await tern?.stop();
	});

	test("signs in, keeps the session over a reload, and signs out", async () => {
		const cp = await openConsole(browser, tern.url);
		const { page } = cp;
		await page.goto("/tasks");
		await page.waitForURL(/\/login\?next=(%2F|\/)tasks/);
		await screenshot(cp, "login");
		await page.getByLabel("Username").fill("admin");
		await page.getByLabel("Password").fill("wrong password");
		await page.getByRole("button", { name: "Sign in" }).click();
		// The API's own words.
		await page.getByTestId("api-error").getByText("Wrong username or password").waitFor();
		await page.getByLabel("Password").fill(ADMIN_PASSWORD);
		await page.getByRole("button", { name: "Sign in" }).click();
		await page.waitForURL(url => url.pathname === "/tasks");
		await page.reload();
		await page.waitForURL(url => url.pathname === "/tasks");
		assert.equal(await page.getByTestId("signed-in").innerText(), "admin admin");
		await page.getByTestId("logout").click();
		await page.waitForURL(/\/login/);
		await page.goto("/jobs");
		await page.waitForURL(/\/login/);
		assert.deepEqual(cp.problems, []);
		await cp.context.close();
	});

	test("every page of the console's table loads the console, not a 404", async () => {
		for (const consolePage of CONSOLE_PAGES) {
			const path = consolePage.path.replace(":id", "x");
			const res = await fetch(tern.url + path);
			assert.equal(res.status, 200, path);
			assert.match(res.headers.get("content-type") ?? "", /text\/html/, path);
			assert.match(await res.text(), /<div id="app">/, path);
		}
		const unknown = await fetch(`${tern.url}/no-such-page`);
		assert.equal(unknown.status, 404);
	});

	test("on a phone the navigation is a tab bar", async () => {
		const cp = await openConsole(browser, tern.url, { viewport: PHONE });
		await signIn(cp.page, "admin", ADMIN_PASSWORD);
		await cp.page.locator(".shell-tabs").getByText("Tasks").click();
		await cp.page.waitForURL(url => url.pathname === "/tasks");
		assert.equal(await cp.page.locator(".shell-side").isVisible(), false);
		assert.deepEqual(cp.problems, []);
		await cp.context.close();
		assert.ok(DESKTOP.width > PHONE.width);
	});
});
