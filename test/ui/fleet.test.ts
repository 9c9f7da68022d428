/**
 * Terminals and jobs in a real browser: a terminal registered in the form, its token read off
 * the page and given to the real agent, seen coming online without a reload; drain and delete
 * through the confirmation dialog; a cron job made in the form with the preview of its fires,
 * then its fires in the history as the agent runs them.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { TestTern, waitFor } from "../helpers/tern.ts";
import { AgentProcess, disposeAgents } from "../agent/helpers.ts";
import { PHONE, browserMissing, horizontalOverflow, launchBrowser, openConsole, screenshot } from "../support/browser.ts";

describe("web console: terminals and jobs", { skip: browserMissing() }, () => {
	let tern: TestTern;
	let browser: Browser;

	before(async () => {
		tern = await TestTern.start();
		browser = await launchBrowser();
	});
	after(async () => {
		await disposeAgents();
		await browser?.close();
		await tern?.stop();
	});

	test("register a terminal, start the agent with the token shown once, see it come online", async () => {
		const cp = await openConsole(browser, tern.url, { token: tern.adminToken });
		const { page } = cp;
		await page.goto("/terminals");
		await page.getByRole("link", { name: "Register a terminal" }).click();
		await page.getByLabel("Id").fill("ui-agent");
		await page.getByLabel("Name").fill("Build box <b>1</b>");
		await page.getByRole("button", { name: "Add label" }).click();
		await page.getByLabel("Label 1", { exact: true }).fill("pool");
		await page.getByLabel("Value 1", { exact: true }).fill("build");
		await page.getByRole("button", { name: "Register" }).click();
		const token = await page.getByTestId("terminal-token").inputValue();
		const command = await page.getByTestId("agent-command").inputValue();
		assert.match(command, /^TERN_TOKEN='[^']+' npx tern-agent --url http:\/\/127\.0\.0\.1:\d+$/);
		assert.ok(command.includes(token));
		await screenshot(cp, "terminal-new");
		await page.getByTestId("waiting").getByText("Waiting for it to connect").waitFor();

		const agent = await AgentProcess.start(tern, "ui-agent", token, { args: ["--allow-commands", "echo"] });
		await page.getByTestId("waiting").getByText("It is online.").waitFor();
		await page.getByRole("button", { name: "I have copied it" }).click();
		await page.waitForURL(/\/terminals\/ui-agent$/);
		await page.getByTestId("terminal-status").getByText("online").waitFor();
		// The name is text, not markup.
		await page.getByText("Build box <b>1</b>").waitFor();
		await screenshot(cp, "terminal");

		await page.goto("/terminals");
		const row = page.locator('[data-terminal-id="ui-agent"]');
		await row.getByText("online").waitFor();
		await row.getByText("pool=build").waitFor();
		await row.getByText("socketio").waitFor();
		await screenshot(cp, "terminals");
		assert.deepEqual(cp.problems, []);
		await cp.context.close();
		assert.ok(agent.running);
	});

	test("a cron job from the form: the preview in its zone, then its fires as the agent runs them", async () => {
		const cp = await openConsole(browser, tern.url, { token: tern.adminToken });
		const { page } = cp;
		await page.goto("/jobs/new");
		await page.getByLabel("Name", { exact: true }).fill("heartbeat");
		// An invalid expression: the API's own words.
		await page.getByTestId("cron-expression").fill("61 * * * * *");
		await page.getByTestId("preview").getByTestId("api-error").waitFor();
		assert.match(await page.getByTestId("preview").innerText(), /schedule\.cron/);
		await page.getByTestId("cron-preset").selectOption({ label: "Every 10 seconds" });
		await page.getByTestId("cron-expression").fill("*/1 * * * * *");
		await page.getByTestId("timezone").selectOption("Asia/Tokyo");
		await page.getByTestId("preview").getByText("(Asia/Tokyo)").waitFor();
		await waitFor(async () => (await page.getByTestId("preview-time").count()) === 5);
		await page.getByLabel("Terminal id").fill("ui-agent");
		await page.getByLabel("Task type").fill("command");
		await page.getByLabel("Payload (JSON)").fill('{"argv": ["echo", "tick"]}');
		await screenshot(cp, "job-new");
		await page.getByRole("button", { name: "Save" }).click();
		await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
		await page.getByTestId("next-fires").locator("li").first().waitFor();
		await page.getByTestId("fire-row").first().getByText("FIRED").waitFor({ timeout: 15_000 });
		await screenshot(cp, "job");
		const jobId = page.url().split("/").pop()!;
		const fires = (await tern.api("GET", `/api/jobs/${jobId}/history`)).body.rows;
		assert.ok(fires.some((f: { outcome: string }) => f.outcome === "FIRED"));

		await page.getByRole("button", { name: "Pause" }).click();
		await page.getByRole("button", { name: "Resume" }).waitFor();
		await page.goto("/jobs");
		await page.getByTestId("job-row").getByText("heartbeat").waitFor();
		await screenshot(cp, "jobs");

		// Delete asks first; Cancel changes nothing, then confirming deletes.
		await page.getByTestId("job-row").getByRole("button", { name: "Delete" }).click();
		await page.locator(".confirm-dialog").getByText("Deletes job 'heartbeat'").waitFor();
		await page.locator(".confirm-dialog").getByRole("button", { name: "Cancel" }).click();
		assert.equal((await tern.api("GET", `/api/jobs/${jobId}`)).status, 200);
		await page.getByTestId("job-row").getByRole("button", { name: "Delete" }).click();
		await page.locator(".confirm-dialog").getByRole("button", { name: "Yes, go ahead" }).click();
		await page.getByTestId("job-row").waitFor({ state: "detached" });
		assert.equal((await tern.api("GET", `/api/jobs/${jobId}`)).status, 404);
		assert.deepEqual(cp.problems, []);
		await cp.context.close();
	});

	test("drain, then delete a terminal through the confirmation dialog; the pages on a phone", async () => {
		const cp = await openConsole(browser, tern.url, { token: tern.adminToken });
		const { page } = cp;
		await page.goto("/terminals/ui-agent");
		await page.getByRole("button", { name: "Drain" }).click();
		await page.getByRole("button", { name: "Undrain" }).waitFor();
		await page.getByRole("button", { name: "Delete" }).click();
		await page.locator(".confirm-dialog").getByRole("button", { name: "Yes, go ahead" }).click();
		await page.waitForURL(/\/terminals$/);
		assert.equal((await tern.api("GET", "/api/terminals/ui-agent")).status, 404);
		await cp.context.close();

		await tern.registerTerminal("phone-t", { labels: { site: "north" } });
		await tern.api("POST", "/api/jobs", {
			name: "nightly",
			schedule: { cron: "0 0 2 * * *" },
			task: { terminalId: "phone-t", type: "report" }
		});
		const phone = await openConsole(browser, tern.url, { token: tern.adminToken, viewport: PHONE });
		for (const [path, name] of [
			["/terminals", "terminals"],
			["/terminals/phone-t", "terminal"],
			["/terminals/new", "terminal-new"],
			["/jobs", "jobs"],
			["/jobs/new", "job-new"]
		] as const) {
			await phone.page.goto(path);
			await phone.page.locator("h1").waitFor();
			await phone.page.waitForLoadState("networkidle");
			await screenshot(phone, name);
			const overflow = await horizontalOverflow(phone.page);
			assert.ok(overflow <= 1, `${path} is ${overflow} px wider than the phone`);
		}
		assert.deepEqual(phone.problems, []);
		await phone.context.close();
	});
});
