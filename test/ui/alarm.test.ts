/**
 * The browser as a terminal: the alarm page registers itself as an operator's terminal,
 * connects, takes an `alarm` task (acked as it is shown, its sound playing through a fake audio
 * device), and answers when the person dismisses it; a `notify` left alone fails at its timeout;
 * other types are refused; a reload reconnects as the same terminal; a pasted token works too.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { TestTern, waitFor } from "../helpers/tern.ts";
import { PHONE, browserMissing, launchBrowser, openConsole, screenshot } from "../support/browser.ts";

describe("web console: the alarm page", { skip: browserMissing() }, () => {
	let tern: TestTern;
	let browser: Browser;

	before(async () => {
		tern = await TestTern.start();
		await tern.api("POST", "/api/users", { username: "duty", password: "duty-password-1", role: "operator" });
		browser = await launchBrowser();
	});
	after(async () => {
		await browser?.close();
		await tern?.stop();
	});

	test("registers, shows an alarm with sound, acks on display and answers on dismiss", async () => {
		const cp = await openConsole(browser, tern.url, { viewport: PHONE });
		const { page } = cp;
		await page.goto("/alarm");
		await screenshot(cp, "alarm-setup");
		await page.getByLabel("Username").fill("duty");
		await page.getByLabel("Password").fill("duty-password-1");
		await page.getByLabel("Screen name").fill("Control room");
		await page.getByRole("button", { name: "Register this screen" }).click();
		await page.getByTestId("link-state").getByText("online").waitFor();
		const terminalId = await page.getByTestId("alarm-terminal").innerText();
		const registered = (await tern.api("GET", `/api/terminals/${terminalId}`)).body;
		assert.equal(registered.status, "online");
		assert.deepEqual(registered.labels, { kind: "alarm" });
		assert.equal(registered.name, "Control room");

		const taskId = await tern.submit({
			terminalId,
			type: "alarm",
			payload: { title: "Boiler pressure <b>high</b>", message: "Check valve 3", level: "critical" }
		});
		await page.getByTestId("alarm-popup").getByText("Boiler pressure <b>high</b>").waitFor();
		await tern.waitForStatus(taskId, "PROCESSING");
		const audio = page.getByTestId("alarm-audio");
		await waitFor(
			async () => audio.evaluate((el: any) => !el.paused && el.currentTime > 0),
			5000,
			() => "the alarm sound to play"
		);
		// The dismiss button has the focus: Enter dismisses.
		assert.equal(await page.evaluate<string>("document.activeElement?.dataset.testid ?? ''"), "dismiss");
		await screenshot(cp, "alarm");
		await page.keyboard.press("Enter");
		const done = await tern.waitForStatus(taskId, "COMPLETED");
		assert.equal((done.data as { by: string }).by, "person");
		await page.getByTestId("alarm-popup").waitFor({ state: "detached" });
		assert.equal(await audio.evaluate((el: any) => el.paused), true);

		// A notify nobody dismisses fails at its timeout, with the page's words.
		const ignored = await tern.submit({ terminalId, type: "notify", payload: { message: "Shift change", timeout: 1 } });
		await page.getByTestId("alarm-popup").getByText("Shift change").waitFor();
		const failed = await tern.waitForStatus(ignored, "FAILED", 5000);
		assert.match(failed.error ?? "", /Nobody dismissed the notify within 1 s/);
		// Other types are refused.
		const other = await tern.submit({ terminalId, type: "command", payload: { argv: ["ls"] } });
		assert.match((await tern.waitForStatus(other, "FAILED")).error ?? "", /unsupported task type/);
		await page.getByTestId("alarm-history").getByText("timed out").waitFor();
		await page.getByTestId("alarm-history").getByText("dismissed").waitFor();

		// A reload reconnects as the same terminal.
		await page.reload();
		await page.getByTestId("link-state").getByText("online").waitFor();
		assert.equal(await page.getByTestId("alarm-terminal").innerText(), terminalId);
		await screenshot(cp, "alarm-history");
		assert.deepEqual(cp.problems, []);
		await cp.context.close();
	});

	test("a pasted terminal token connects, and a cancel closes the popup without an answer", async () => {
		const token = await tern.registerTerminal("wall-2");
		const cp = await openConsole(browser, tern.url);
		const { page } = cp;
		await page.goto("/alarm");
		await page.getByRole("tab", { name: "Paste a token" }).click();
		await page.getByLabel("Terminal token").fill(token);
		await page.getByRole("button", { name: "Connect" }).click();
		await page.getByTestId("link-state").getByText("online").waitFor();
		await tern.waitForTerminal("wall-2", "online");
		const taskId = await tern.submit({ terminalId: "wall-2", type: "alarm", payload: { message: "Door open" } });
		await page.getByTestId("alarm-popup").getByText("Door open").waitFor();
		await screenshot(cp, "alarm");
		await tern.waitForStatus(taskId, "PROCESSING");
		assert.equal((await tern.api("POST", `/api/tasks/${taskId}/cancel`)).status, 200);
		await page.getByTestId("alarm-popup").waitFor({ state: "detached" });
		assert.equal((await tern.query(taskId)).status, "CANCELLED");
		await page.getByRole("button", { name: "Forget this terminal" }).click();
		await page.getByRole("button", { name: "Register this screen" }).waitFor();
		assert.deepEqual(cp.problems, []);
		await cp.context.close();
	});
});
