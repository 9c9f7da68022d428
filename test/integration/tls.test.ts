/**
 * TLS_CERT and TLS_KEY: the api serves HTTPS, and socket.io and the raw WebSocket run on the same
 * server (WSS); a gateway without an api serves its own HTTPS. A self-signed certificate made
 * here is trusted through a CA option, as `--ca` does for the agent; plain HTTP to the port and
 * a client that does not trust the certificate both fail. Strict-Transport-Security is sent.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServiceBroker } from "moleculer";
import { generate } from "selfsigned";
import { io } from "socket.io-client";
import WebSocket from "ws";
import { loadConfig } from "../../moleculer.config.ts";
import { startNode } from "../../node.ts";
import { spawn } from "node:child_process";
import { FAST, ADMIN_PASSWORD, waitFor } from "../helpers/tern.ts";
import { CLI } from "../agent/helpers.ts";

interface Answer {
	status: number;
	headers: http.IncomingHttpHeaders;
	body: string;
}

function request(url: string, options: https.RequestOptions & { body?: unknown } = {}): Promise<Answer> {
	const { body, ...rest } = options;
	const client = url.startsWith("https:") ? https : http;
	return new Promise((resolve, reject) => {
		const req = client.request(url, { ...rest, headers: { "content-type": "application/json", ...rest.headers } }, res => {
			let text = "";
			res.setEncoding("utf8");
			res.on("data", chunk => (text += chunk));
			res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
		});
		req.on("error", reject);
		req.end(body === undefined ? undefined : JSON.stringify(body));
	});
}

/** A node with TLS_CERT/TLS_KEY from `files`, services as given, on a free port. */
async function startTlsNode(dir: string, files: { cert: string; key: string }, services?: string): Promise<ServiceBroker> {
	const config = loadConfig({
		TERN_DATA_DIR: dir,
		PORT: "0",
		TERN_ADMIN_PASSWORD: ADMIN_PASSWORD,
		LOGLEVEL: "warn",
		TLS_CERT: files.cert,
		TLS_KEY: files.key,
		...(services ? { SERVICES: services } : {})
	});
	return startNode({ config, settings: FAST, broker: { logger: false } });
}

describe("TLS", () => {
	let dir: string;
	let ca: string;
	let files: { cert: string; key: string };
	let broker: ServiceBroker;
	let port: number;
	let base: string;
	let adminToken: string;
	let terminalToken: string;

	before(async () => {
		dir = mkdtempSync(join(tmpdir(), "tern-tls-"));
		const pems = await generate([{ name: "commonName", value: "localhost" }], {
			keyType: "ec",
			algorithm: "sha256",
			extensions: [
				{ name: "basicConstraints", cA: true },
				{
					name: "subjectAltName",
					altNames: [
						{ type: 2, value: "localhost" },
						{ type: 7, ip: "127.0.0.1" }
					]
				}
			]
		});
		ca = pems.cert;
		files = { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") };
		writeFileSync(files.cert, pems.cert);
		writeFileSync(files.key, pems.private, { mode: 0o600 });
		broker = await startTlsNode(join(dir, "data"), files);
		const api = broker.getLocalService("api") as unknown as { server: https.Server };
		port = (api.server.address() as AddressInfo).port;
		base = `https://127.0.0.1:${port}`;
		const login = await request(`${base}/api/auth/login`, {
			method: "POST",
			ca,
			body: { username: "admin", password: ADMIN_PASSWORD }
		});
		assert.equal(login.status, 200, login.body);
		adminToken = JSON.parse(login.body).token;
		const terminal = await request(`${base}/api/terminals`, {
			method: "POST",
			ca,
			headers: { authorization: `Bearer ${adminToken}` },
			body: { id: "tls-1" }
		});
		assert.equal(terminal.status, 201, terminal.body);
		terminalToken = JSON.parse(terminal.body).token;
	});
	after(async () => {
		await broker?.stop();
		rmSync(dir, { recursive: true, force: true });
	});

	it("serves REST over HTTPS with Strict-Transport-Security and the secure headers", async () => {
		const reply = await request(`${base}/api/terminals/tls-1`, { ca, headers: { authorization: `Bearer ${adminToken}` } });
		assert.equal(reply.status, 200, reply.body);
		assert.equal(JSON.parse(reply.body).id, "tls-1");
		assert.match(String(reply.headers["strict-transport-security"]), /^max-age=\d+/);
		assert.equal(reply.headers["x-content-type-options"], "nosniff");
		assert.match(String(reply.headers["content-security-policy"]), /connect-src 'self' wss:\/\/127\.0\.0\.1:\d+/);
	});

	it("refuses plain HTTP on the port, and a client that does not trust the certificate", async () => {
		await assert.rejects(request(`http://127.0.0.1:${port}/api/version`));
		await assert.rejects(request(`${base}/api/version`), /self[- ]signed|certificate/i);
	});

	it("takes a socket.io terminal over WSS, and socket.io's polling over HTTPS", async () => {
		for (const transports of [["websocket"], ["polling"]]) {
			const socket = io(`${base}/terminal`, {
				auth: { token: terminalToken },
				transports,
				ca,
				reconnection: false,
				forceNew: true
			});
			try {
				await new Promise<void>((resolve, reject) => {
					socket.once("connect", resolve);
					socket.once("connect_error", reject);
				});
				const ack = await new Promise<{ ok: boolean }>(resolve => socket.emit("heartbeat", resolve));
				assert.deepEqual(ack, { ok: true }, transports[0]);
			} finally {
				socket.close();
			}
		}
		const untrusted = io(`${base}/terminal`, {
			auth: { token: terminalToken },
			transports: ["websocket"],
			reconnection: false,
			forceNew: true
		});
		await new Promise<void>(resolve => untrusted.once("connect_error", () => resolve()));
		untrusted.close();
	});

	it("takes a raw WebSocket terminal over WSS", async () => {
		const ws = new WebSocket(`wss://127.0.0.1:${port}/ws/terminal/tls-1`, {
			ca,
			headers: { authorization: `Bearer ${terminalToken}` }
		});
		try {
			await new Promise<void>((resolve, reject) => {
				ws.once("open", resolve);
				ws.once("error", reject);
			});
			ws.send(JSON.stringify({ type: "progress", taskId: "nope", attempt: 1 }));
			const message = await new Promise<{ type: string }>(resolve =>
				ws.once("message", data => resolve(JSON.parse(String(data))))
			);
			assert.equal(message.type, "error", "answered over WSS");
		} finally {
			ws.terminate();
		}
		const plain = new WebSocket(`ws://127.0.0.1:${port}/ws/terminal/tls-1`, {
			headers: { authorization: `Bearer ${terminalToken}` }
		});
		await new Promise<void>(resolve => plain.once("error", () => resolve()));
	});

	it("lets the agent in over wss:// (socket) and https:// (HTTP pull) with --ca, its token from TERN_TOKEN", async () => {
		const caFile = join(dir, "ca.pem");
		writeFileSync(caFile, ca);
		for (const transport of ["socket", "pull"]) {
			const args = [CLI, "--url", base, "--ca", caFile, "--transport", transport, "--pull-interval", "0.2"];
			const child = spawn(
				process.execPath,
				[...args, "--data-dir", join(dir, `agent-${transport}`), "--log-level", "debug"],
				{
					env: { PATH: process.env.PATH, TERN_TOKEN: terminalToken },
					stdio: ["ignore", "pipe", "pipe"]
				}
			);
			let output = "";
			child.stdout.on("data", chunk => (output += chunk));
			child.stderr.on("data", chunk => (output += chunk));
			const exited = new Promise(resolve => child.once("exit", resolve));
			try {
				if (transport === "socket") {
					const connected = /Connected to https:\/\/127\.0\.0\.1:\d+ over socket\.io/;
					await waitFor(
						() => connected.test(output),
						15_000,
						() => `the agent to connect:\n${output}`
					);
				} else {
					const submit = await request(`${base}/api/task/submit`, {
						method: "POST",
						ca,
						headers: { authorization: `Bearer ${adminToken}` },
						body: { terminalId: "tls-1", type: "pulled" }
					});
					assert.equal(submit.status, 201, submit.body);
					await waitFor(
						() => /Pulled 1 task/.test(output),
						15_000,
						() => `the agent to pull over HTTPS:\n${output}`
					);
				}
				assert.doesNotMatch(output, /visible to every user|certificate/);
			} finally {
				child.kill("SIGKILL");
				await exited;
			}
		}
	});

	it("serves the gateway's own server over HTTPS when no api runs beside it", async () => {
		const gateway = await startTlsNode(join(dir, "data"), files, "auth,terminals,cache,dispatcher,gateway");
		try {
			const own = (gateway.getLocalService("gateway") as unknown as { ownServer: https.Server }).ownServer;
			const gatewayPort = (own.address() as AddressInfo).port;
			const notFound = await request(`https://127.0.0.1:${gatewayPort}/`, { ca });
			assert.equal(notFound.status, 404);
			assert.match(String(notFound.headers["strict-transport-security"]), /max-age/);
			const socket = io(`https://127.0.0.1:${gatewayPort}/terminal`, {
				auth: { token: terminalToken },
				transports: ["websocket"],
				ca,
				reconnection: false,
				forceNew: true
			});
			try {
				await new Promise<void>((resolve, reject) => {
					socket.once("connect", resolve);
					socket.once("connect_error", reject);
				});
			} finally {
				socket.close();
			}
		} finally {
			await gateway.stop();
		}
	});

	it("keeps the key out of the service registry (what other nodes are told of this one)", () => {
		const services = broker.registry.getServiceList({}) as unknown as { name: string; settings?: object }[];
		for (const name of ["api", "gateway"]) {
			const settings = services.find(s => s.name === name)?.settings;
			assert.ok(settings, name);
			assert.doesNotMatch(JSON.stringify(settings), /PRIVATE KEY/, name);
		}
	});

	it("refuses to start with only one of TLS_CERT and TLS_KEY, or a file it cannot read", () => {
		const env = { TERN_DATA_DIR: dir, JWT_SECRET: "a-test-secret-of-at-least-32-bytes!" };
		assert.throws(() => loadConfig({ ...env, TLS_CERT: files.cert }), /both TLS_CERT and TLS_KEY.*only TLS_CERT/);
		assert.throws(() => loadConfig({ ...env, TLS_KEY: files.key }), /only TLS_KEY/);
		assert.throws(
			() => loadConfig({ ...env, TLS_CERT: join(dir, "missing.pem"), TLS_KEY: files.key }),
			/TLS_CERT '.*missing\.pem' cannot be read/
		);
		const config = loadConfig({ ...env, ...{ TLS_CERT: files.cert, TLS_KEY: files.key } });
		assert.ok(config.tls?.key.includes("PRIVATE KEY"));
	});
});
