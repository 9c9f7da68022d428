/**
 * The gateway under a crowd and cut off: handshakes past its admission limit are refused at once
 * with 503 GATEWAY_BUSY and when to come back (raw WebSocket: Retry-After; socket.io: the
 * connect_error's data), the real agent waits as told and gets in; a gateway cut off from the
 * cluster refuses handshakes, keeps its sessions for the grace, then tells each to reconnect
 * after a delay within the spread, and takes handshakes again when it is back. The gateway's
 * clock is the test's.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { io } from "socket.io-client";
import WebSocket from "ws";
import { transportWatch } from "../../lib/transport-watch.ts";
import { AgentProcess, disposeAgents } from "../agent/helpers.ts";
import { TestTern } from "../helpers/tern.ts";
import { scrape, sample } from "../support/metrics.ts";

let now = 5_000_000;
const clock = () => now;

interface Upgrade {
	status: number;
	retryAfter: string | null;
	body: { type?: string; data?: { retryAfterMs?: number; reason?: string } };
	ws: WebSocket | null;
}

/** A raw WebSocket handshake: opened, or the HTTP refusal with its headers and body. */
function upgrade(tern: TestTern, id: string, token: string): Promise<Upgrade> {
	const ws = new WebSocket(`ws://127.0.0.1:${tern.port}/ws/terminal/${id}`, { headers: { authorization: `Bearer ${token}` } });
	return new Promise((resolve, reject) => {
		ws.once("open", () => resolve({ status: 101, retryAfter: null, body: {}, ws }));
		ws.once("unexpected-response", (_req, res) => {
			let text = "";
			res.on("data", chunk => (text += chunk));
			res.on("end", () =>
				resolve({
					status: res.statusCode ?? 0,
					retryAfter: res.headers["retry-after"] ?? null,
					body: JSON.parse(text),
					ws: null
				})
			);
		});
		ws.once("error", reject);
	});
}

describe("the gateway's admission gate", () => {
	let tern: TestTern;
	const tokens = new Map<string, string>();
	before(async () => {
		tern = await TestTern.start({ settings: { gateway: { admitConcurrency: 0, admitRate: 3, clock } } });
		for (let i = 0; i < 8; i++) tokens.set(`crowd-${i}`, await tern.registerTerminal(`crowd-${i}`));
	});
	after(async () => {
		await disposeAgents();
		await tern.close();
	});
	// Each test in a second of its own.
	beforeEach(() => (now += 60_000));

	it("raw WebSocket: past the rate a handshake is 503 GATEWAY_BUSY with Retry-After, spread over the next seconds", async () => {
		const ids = [...tokens.keys()].slice(0, 7);
		const answers = await Promise.all(ids.map(id => upgrade(tern, id, tokens.get(id)!)));
		const opened = answers.filter(a => a.status === 101);
		const refused = answers.filter(a => a.status !== 101);
		assert.equal(opened.length, 3, "the rate's worth are let in");
		assert.equal(refused.length, 4);
		for (const a of refused) {
			assert.equal(a.status, 503);
			assert.equal(a.body.type, "GATEWAY_BUSY");
			assert.equal(a.body.data?.reason, "busy");
			const ms = a.body.data!.retryAfterMs!;
			assert.equal(a.retryAfter, String(Math.ceil(ms / 1000)));
		}
		const waits = refused.map(a => a.body.data!.retryAfterMs!).sort((x, y) => x - y);
		// Three come back after this second (1000–1500 ms with jitter), the fourth a second later.
		assert.ok(
			waits.slice(0, 3).every(ms => ms >= 1000 && ms <= 1500),
			`${waits}`
		);
		assert.ok(waits[3] >= 2000 && waits[3] <= 3000, `${waits}`);
		for (const a of opened) a.ws!.close();
		const metrics = await scrape(tern.url);
		assert.ok((sample(metrics, "tern_gateway_handshakes_refused_total", { reason: "busy" }) ?? 0) >= 4);
	});

	it("socket.io: a busy handshake's connect_error carries GATEWAY_BUSY and retryAfterMs", async () => {
		for (const id of ["crowd-0", "crowd-1", "crowd-2"]) (await upgrade(tern, id, tokens.get(id)!)).ws?.close();
		const socket = io(`${tern.url}/terminal`, {
			auth: { token: tokens.get("crowd-3") },
			transports: ["websocket"],
			reconnection: false,
			forceNew: true
		});
		const err = await new Promise<Error & { data?: { type: string; data: { retryAfterMs: number } } }>(resolve =>
			socket.once("connect_error", resolve)
		);
		socket.close();
		assert.equal(err.data?.type, "GATEWAY_BUSY");
		assert.ok(err.data!.data.retryAfterMs >= 1000, JSON.stringify(err.data));
	});

	it("the agent, refused as busy, waits the time it was told and then gets in", async () => {
		for (const id of ["crowd-0", "crowd-1", "crowd-2"]) (await upgrade(tern, id, tokens.get(id)!)).ws?.close();
		const agent = await AgentProcess.start(tern, "crowd-7", tokens.get("crowd-7")!, { waitOnline: false });
		await agent.waitForLog(/is busy: The gateway is busy admitting connections: try again in \d+ ms/);
		// The second the agent was refused in is over: its next try is let in.
		now += 1000;
		await tern.waitForTerminal("crowd-7", "online", 10_000);
		assert.match(agent.output, /Next socket connection attempt in (1[0-9]{3}) ms/);
	});
});

describe("a gateway cut off from the cluster", () => {
	let tern: TestTern;
	before(async () => {
		tern = await TestTern.start({ settings: { gateway: { partitionGrace: 300, reconnectSpread: 2000 } } });
	});
	after(() => tern.close());

	it("refuses handshakes, lets its sessions go with a spread reconnect delay after the grace, and takes them again when back", async () => {
		const tokens = await Promise.all(["cut-1", "cut-2"].map(id => tern.registerTerminal(id)));
		const held = await tern.openWs("/ws/terminal/cut-1", tokens[0]);
		const watch = transportWatch(tern.broker);
		watch.down("test: NATS unreachable");

		const refused = await upgrade(tern, "cut-2", tokens[1]);
		assert.equal(refused.status, 503);
		assert.equal(refused.body.type, "GATEWAY_BUSY");
		assert.equal(refused.body.data?.reason, "partition");
		assert.ok(refused.retryAfter !== null);

		const advice = await held.next("reconnect", 5000);
		assert.equal(advice.reason, "partition");
		assert.ok(Number.isInteger(advice.delayMs) && advice.delayMs >= 0 && advice.delayMs < 2000, JSON.stringify(advice));
		await new Promise(resolve => (held.ws.readyState === WebSocket.CLOSED ? resolve(null) : held.ws.once("close", resolve)));
		await tern.waitForTerminal("cut-1", "offline");

		watch.up();
		const back = await upgrade(tern, "cut-2", tokens[1]);
		assert.equal(back.status, 101);
		back.ws!.close();
	});
});
