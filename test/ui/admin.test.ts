/**
 * Alerts, users, audit and roles in a real browser: an alert fires and shows up without a
 * reload, is acknowledged and silenced; a webhook channel's test reaches a real receiver; users
 * are created, changed and deleted through the confirmation dialog; the audit log shows it all; and a viewer sees no button the API would refuse.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { ACCESS } from "../../lib/contracts/access.ts";
import { CONSOLE_PAGES } from "../../lib/contracts/console.ts";
import { TestTern } from "../helpers/tern.ts";
import { HttpReceiver } from "../support/receivers.ts";
import { PHONE, browserMissing, launchBrowser, openConsole, screenshot } from "../support/browser.ts";

const RANK = { viewer: 1, operator: 2, admin: 3 } as const;

describe("web console: alerts, users, audit and roles", { skip: browserMissing() }, () => {
	let tern: TestTern;
	let browser: Browser;
	let hook: HttpReceiver;

	before(async () => {
		tern = await TestTern.start({ settings: { monitor: { evaluateInterval: 3_600_000 } } });
		browser = await launchBrowser();
		hook = await HttpReceiver.start();
	});
	after(async () => {
		await hook?.close();
		await browser?.close();
		await tern?.stop();
	});

	async function tokenOf(username: string, role: "viewer" | "operator" | "admin"): Promise<string> {
		await tern.api("POST", "/api/users", { username, password: `${username}-password-1`, role });
		return (await tern.api("POST", "/api/auth/login", { username, password: `${username}-password-1` }, null)).body.token;
	}

	test("an alert fires and appears live; acknowledge it, silence it; a channel's test reaches its receiver", async () => {
		const rule = await tern.api("POST", "/api/alert-rules", {
			name: "Work is waiting",
			metric: "tasks_pending",
			condition: ">",
			threshold: 0,
			severity: "critical"
		});
		assert.equal(rule.status, 201, JSON.stringify(rule.body));
		const channel = await tern.api("POST", "/api/alert-channels", {
			name: "ops-hook",
			type: "webhook",
			config: { url: `${hook.url}/hook` }
		});
		assert.equal(channel.status, 201, JSON.stringify(channel.body));

		const cp = await openConsole(browser, tern.url, { token: tern.adminToken });
		const { page } = cp;
		await page.goto("/alerts");
		await page.getByText("No firing alert.").waitFor();
		await tern.registerTerminal("nobody-home");
		await tern.submit({ terminalId: "nobody-home", type: "waits" });
		await tern.broker.call("monitor.evaluate");
		const row = page.getByTestId("alert-row").filter({ hasText: "Work is waiting" });
		await row.getByText("firing").waitFor();
		await screenshot(cp, "alerts");
		await row.getByRole("button", { name: "Acknowledge" }).click();
		await row.getByTestId("acknowledged").getByText("acknowledged by admin").waitFor();
		await row.getByRole("button", { name: "Silence…" }).click();
		await page.getByLabel("Comment").fill("known, fixing");
		await page.getByRole("button", { name: "Silence", exact: true }).click();
		await page.goto("/alerts/silences");
		await page.getByTestId("silence-row").getByText("known, fixing").waitFor();
		await screenshot(cp, "silences");

		await page.goto("/alerts/channels");
		// The firing alert itself went to the channel too (a rule without channels tells them all).
		const before_ = hook.requests.length;
		await page.getByRole("button", { name: "Send a test" }).click();
		await page.getByTestId("test-outcome").getByText("Sent (1 attempt)").waitFor();
		assert.equal(hook.requests.length, before_ + 1);
		await screenshot(cp, "alert-channels");
		await page.goto("/alerts/rules");
		await page.getByTestId("rule-row").filter({ hasText: "Work is waiting" }).waitFor();
		await screenshot(cp, "alert-rules");
		assert.deepEqual(cp.problems, []);
		await cp.context.close();
	});

	test("users: create, change role, delete after the dialog; the audit log shows it, filtered", async () => {
		const cp = await openConsole(browser, tern.url, { token: tern.adminToken });
		const { page } = cp;
		await page.goto("/users");
		await page.getByLabel("Username").fill("night-ops");
		await page.getByLabel("Password").fill("scripted-password-1");
		await page.getByRole("button", { name: "Create user" }).click();
		const row = page.locator('[data-username="night-ops"]');
		await row.getByText("night-ops").waitFor();
		await row.getByLabel("Role of night-ops").selectOption("operator");
		await page.locator(".toast-done").waitFor();
		const users = (await tern.api("GET", "/api/users")).body as { username: string; role: string }[];
		assert.equal(users.find(u => u.username === "night-ops")?.role, "operator");
		await screenshot(cp, "users");

		// The last admin cannot be demoted: the API's words are shown.
		await page.locator('[data-username="admin"]').getByLabel("Role of admin").selectOption("viewer");
		await page.locator(".toast-failed").waitFor();
		assert.match(await page.locator(".toast-failed").innerText(), /admin/i);

		await row.getByRole("button", { name: "Delete" }).click();
		await page.locator(".confirm-dialog").getByRole("button", { name: "Cancel" }).click();
		assert.ok(((await tern.api("GET", "/api/users")).body as { username: string }[]).some(u => u.username === "night-ops"));
		await row.getByRole("button", { name: "Delete" }).click();
		await page.locator(".confirm-dialog").getByRole("button", { name: "Yes, go ahead" }).click();
		await row.waitFor({ state: "detached" });

		await page.goto("/audit?action=auth.removeUser");
		await page.getByTestId("audit-row").first().getByText("auth.removeUser").waitFor();
		assert.ok((await page.getByTestId("audit-row").count()) >= 1);
		for (const text of await page.getByTestId("audit-row").locator("td:nth-child(3)").allInnerTexts())
			assert.equal(text, "auth.removeUser");
		await page.getByTestId("verify").click();
		await page.getByTestId("verification").getByText("Intact").waitFor();
		await screenshot(cp, "audit");
		await page.goto("/account");
		await page.getByLabel("Name").fill("ci-script");
		await page.getByRole("button", { name: "Create token" }).click();
		await page.getByTestId("api-token-secret").waitFor();
		await page.getByTestId("api-token-row").getByText("ci-script").waitFor();
		await screenshot(cp, "account");
		assert.deepEqual(cp.problems, []);
		await cp.context.close();
	});

	test("a viewer sees no button the API would refuse, on any page; an operator none of an admin's", async () => {
		const viewer = await tokenOf("roles-viewer", "viewer");
		const operator = await tokenOf("roles-operator", "operator");
		await tern.registerTerminal("roles-t");
		const taskId = await tern.submit({ terminalId: "roles-t", type: "waits" });
		const job = await tern.api("POST", "/api/jobs", {
			name: "roles-job",
			schedule: { cron: "0 0 3 * * *" },
			task: { terminalId: "roles-t", type: "x" }
		});
		const ids: Record<string, string> = { task: taskId, job: job.body.id, "job-edit": job.body.id, terminal: "roles-t" };

		// One browser context per role, every page in turn: what it may see once the page has loaded.
		const contexts = {
			viewer: await openConsole(browser, tern.url, { token: viewer }),
			operator: await openConsole(browser, tern.url, { token: operator }),
			admin: await openConsole(browser, tern.url, { token: tern.adminToken })
		};
		const actionsOn = async (role: keyof typeof contexts, path: string) => {
			const { page } = contexts[role];
			await page.goto(path);
			await page.locator("h1").first().waitFor();
			await page.waitForLoadState("networkidle");
			const found = await page.locator("[data-action]").evaluateAll(els => els.map(el => el.getAttribute("data-action")!));
			return { found, landed: new URL(page.url()).pathname };
		};

		let adminSaw = 0;
		for (const page of CONSOLE_PAGES.filter(p => !p.open)) {
			const path = page.path.replace(":id", ids[page.name] ?? "x");
			for (const role of ["viewer", "operator"] as const) {
				const { found, landed } = await actionsOn(role, path);
				if (page.admin) assert.equal(landed, "/", `${role} on ${path} is sent home`);
				if (["task-new", "job-new", "job-edit", "terminal-new"].includes(page.name) && role === "viewer")
					assert.equal(landed, "/", `a viewer on ${path} is sent home`);
				for (const action of found) {
					const rule = ACCESS[action];
					assert.ok(rule, `${path}: data-action '${action}' is not in the access table`);
					const least = rule.access === "terminal-or-viewer" || rule.access === "public" ? "viewer" : rule.access;
					assert.ok(
						least !== "terminal" && RANK[role] >= RANK[least as keyof typeof RANK],
						`${role} sees '${action}' on ${path}`
					);
				}
			}
			adminSaw += (await actionsOn("admin", path)).found.length;
		}
		assert.ok(adminSaw > 20, `an admin saw ${adminSaw} actions in all`);
		for (const cp of Object.values(contexts)) {
			assert.deepEqual(cp.problems, []);
			await cp.context.close();
		}

		const phone = await openConsole(browser, tern.url, { token: tern.adminToken, viewport: PHONE });
		for (const [path, name] of [
			["/alerts", "alerts"],
			["/alerts/rules", "alert-rules"],
			["/alerts/channels", "alert-channels"],
			["/alerts/silences", "silences"],
			["/users", "users"],
			["/audit", "audit"],
			["/account", "account"]
		] as const) {
			await phone.page.goto(path);
			await phone.page.locator("h1").waitFor();
			await phone.page.waitForLoadState("networkidle");
			await screenshot(phone, name);
		}
		assert.deepEqual(phone.problems, []);
		await phone.context.close();
	});
});
