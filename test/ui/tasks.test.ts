/**
 * The dashboard and the task pages in a real browser against a real Tern: a task submitted from
 * the form reaches COMPLETED on its page without a reload, its logs appear while it runs, the
 * dashboard's counts move, the list filters by state and text and keeps them over a reload, and
 * HTML in a payload stays text.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { TestTern, type TestTerminal } from "../helpers/tern.ts";
import {
	DESKTOP,
	PHONE,
	browserMissing,
	horizontalOverflow,
	launchBrowser,
	openConsole,
	screenshot
} from "../support/browser.ts";

describe("web console: dashboard and tasks", { skip: browserMissing() }, () => {
	let tern: TestTern;
	let browser: Browser;
	let terminal: TestTerminal;

	before(async () => {
		tern = await TestTern.start();
		browser = await launchBrowser();
		terminal = await tern.connectTerminal("ui-worker", await tern.registerTerminal("ui-worker", { labels: { pool: "ui" } }));
	});
	after(async () => {
		terminal?.close();
		await browser?.close();
		await tern?.stop();
	});

	test("a task submitted from the form reaches COMPLETED live, with its logs and history", async () => {
		const cp = await openConsole(browser, tern.url, { token: tern.adminToken });
		const { page } = cp;
		await page.goto("/");
		await page.getByTestId("terminals-online").getByText("1").waitFor();
		const completedBefore = Number(await page.getByTestId("count-COMPLETED").locator("b").innerText());

		await page.goto("/tasks/new");
		await page.getByLabel("Terminal id").fill("ui-worker");
		await page.getByLabel("Type", { exact: true }).fill("build");
		await page.getByLabel("Payload (JSON)").fill('{"note": "<img src=x onerror=alert(1)>"}');
		await screenshot(cp, "task-new");
		await page.getByRole("button", { name: "Submit" }).click();
		await page.waitForURL(/\/tasks\/[0-9a-f-]{36}$/);
		const taskId = page.url().split("/").pop()!;

		const push = await terminal.nextTask();
		assert.equal(push.taskId, taskId);
		await terminal.ack(push);
		await page.getByTestId("task-status").getByText("PROCESSING").waitFor();
		await terminal.request("progress", { taskId, attempt: push.attempt, percent: 40, log: "compiling step 1\n" });
		await page.getByTestId("logs").getByText("compiling step 1").waitFor();
		await screenshot(cp, "task-running");
		await terminal.result(push, "success", { artifact: "app.tar" });
		await page.getByTestId("task-status").getByText("COMPLETED").waitFor();
		await page.getByTestId("result").getByText("app.tar").waitFor();
		await page.getByTestId("history").getByText("COMPLETED").waitFor();
		assert.equal(await page.getByTestId("history").locator("li").count(), 3);
		// HTML in the payload is text, not markup.
		await page.getByTestId("payload").getByText("<img src=x onerror=alert(1)>").waitFor();
		assert.equal(await page.locator("img[src=x]").count(), 0);
		await screenshot(cp, "task");

		await page.goto("/");
		await page
			.getByTestId("count-COMPLETED")
			.locator("b")
			.getByText(String(completedBefore + 1))
			.waitFor();
		await screenshot(cp, "dashboard");
		assert.deepEqual(cp.problems, []);
		await cp.context.close();
	});

	test("the list moves live, filters by state and text, and keeps its filters over a reload", async () => {
		const pendingId = await tern.submit({
			selector: { labels: { pool: "nobody" } },
			type: "nightly-report",
			waitForTerminal: true
		});
		const cp = await openConsole(browser, tern.url, { token: tern.adminToken });
		const { page } = cp;
		await page.goto("/tasks");
		await page.locator(`[data-task-id="${pendingId}"]`).getByText("PENDING").waitFor();

		// A new task arrives while the list is open: announced, then shown on request.
		const liveId = await tern.submit({ terminalId: "ui-worker", type: "live-one" });
		await page.getByTestId("show-new").waitFor();
		await page.getByTestId("show-new").click();
		await page.locator(`[data-task-id="${liveId}"]`).waitFor();
		const push = await terminal.nextTask();
		await terminal.ack(push);
		await page.locator(`[data-task-id="${liveId}"]`).getByText("PROCESSING").waitFor();
		await terminal.result(push);
		await page.locator(`[data-task-id="${liveId}"]`).getByText("COMPLETED").waitFor();

		await page.getByLabel("PENDING").check();
		await page.getByLabel("Search").fill("nightly");
		await page.getByRole("button", { name: "Apply" }).click();
		await page.waitForURL(url => url.searchParams.get("q") === "nightly" && url.searchParams.get("status") === "PENDING");
		await page.locator(`[data-task-id="${liveId}"]`).waitFor({ state: "detached" });
		assert.equal(await page.getByTestId("task-row").count(), 1);
		await page.reload();
		await page.locator(`[data-task-id="${pendingId}"]`).waitFor();
		assert.equal(await page.getByTestId("task-row").count(), 1);
		assert.equal(await page.getByLabel("Search").inputValue(), "nightly");
		await screenshot(cp, "tasks");

		// Cancel it from its page; the API's refusal of a second cancel is shown as the API words it.
		await page.locator(`[data-task-id="${pendingId}"] a`).click();
		await page.getByRole("button", { name: "Cancel" }).click();
		await page.getByTestId("task-status").getByText("CANCELLED").waitFor();
		assert.equal(await page.getByRole("button", { name: "Cancel" }).count(), 0);
		assert.deepEqual(cp.problems, []);
		await cp.context.close();
	});

	test("a lost live connection is shown, and comes back by itself", async () => {
		const cp = await openConsole(browser, tern.url, { token: tern.adminToken });
		const { page } = cp;
		await page.goto("/");
		await page.getByTestId("terminals-online").waitFor();
		await page.getByTestId("live-banner").waitFor({ state: "detached" });
		const gateway = tern.broker.getLocalService("gateway") as unknown as {
			io: { of(ns: string): { disconnectSockets(close: boolean): void } };
		};
		gateway.io.of("/client").disconnectSockets(true);
		await page.getByTestId("live-banner").getByText("Live updates lost").waitFor();
		await screenshot(cp, "dashboard-lost");
		await page.getByTestId("live-banner").waitFor({ state: "detached" });
		// Live again: a new task moves the counts without a reload.
		const pending = Number(await page.getByTestId("count-PENDING").locator("b").innerText());
		await tern.submit({ selector: { labels: { pool: "nobody" } }, type: "after-reconnect", waitForTerminal: true });
		await page
			.getByTestId("count-PENDING")
			.locator("b")
			.getByText(String(pending + 1))
			.waitFor();
		assert.deepEqual(cp.problems, []);
		await cp.context.close();
	});

	test("on a phone: the dashboard, the list and a task", async () => {
		const cp = await openConsole(browser, tern.url, { token: tern.adminToken, viewport: PHONE });
		await cp.page.goto("/");
		await cp.page.getByTestId("terminals-online").waitFor();
		await screenshot(cp, "dashboard");
		await cp.page.goto("/tasks");
		await cp.page.getByTestId("task-row").first().waitFor();
		await screenshot(cp, "tasks");
		await cp.page.getByTestId("task-row").first().locator("a").click();
		await cp.page.getByTestId("history").waitFor();
		await screenshot(cp, "task");
		await cp.page.goto("/tasks/new");
		await screenshot(cp, "task-new");
		// Nothing wider than the screen.
		const overflow = await horizontalOverflow(cp.page);
		assert.ok(overflow <= 1, `the page is ${overflow} px wider than the phone`);
		assert.deepEqual(cp.problems, []);
		await cp.context.close();
		assert.ok(DESKTOP.width > PHONE.width);
	});
});
