/**
 * Real receivers of Tern's notifications, on port 0: an HTTP endpoint that records each request
 * and checks the webhook signature, and an SMTP server (smtp-server) whose messages are parsed by
 * mailparser. Both are EventEmitters, so a test waits for a delivery with `until`.
 */
import { EventEmitter } from "node:events";
import { createHmac, timingSafeEqual } from "node:crypto";
import http, { type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { simpleParser, type ParsedMail } from "mailparser";
import { until } from "./wait.ts";

export interface ReceivedRequest {
	method: string;
	path: string;
	headers: http.IncomingHttpHeaders;
	raw: string;
	body: any;
	/** Whether `X-Tern-Signature` verified against the receiver's secret (null: no secret set). */
	signed: boolean | null;
}

/** Checks `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`. */
export function verifySignature(header: string | undefined, raw: string, secret: string): boolean {
	const parts = Object.fromEntries((header ?? "").split(",").map(part => part.split("=") as [string, string]));
	if (!parts.t || !parts.v1) return false;
	const expected = createHmac("sha256", secret).update(`${parts.t}.${raw}`).digest();
	const given = Buffer.from(parts.v1, "hex");
	return given.length === expected.length && timingSafeEqual(given, expected);
}

export class HttpReceiver extends EventEmitter {
	readonly requests: ReceivedRequest[] = [];
	/** Status codes to answer with, in turn; 200 once they run out. */
	readonly answers: number[] = [];
	url = "";
	private server!: Server;
	private readonly secret: string | null;

	private constructor(secret: string | null) {
		super();
		this.secret = secret;
	}

	static async start(secret: string | null = null): Promise<HttpReceiver> {
		const receiver = new HttpReceiver(secret);
		receiver.server = http.createServer((req, res) => {
			const chunks: Buffer[] = [];
			req.on("data", chunk => chunks.push(chunk as Buffer));
			req.on("end", () => {
				const raw = Buffer.concat(chunks).toString("utf8");
				let body: unknown = raw;
				try {
					body = raw ? JSON.parse(raw) : null;
				} catch {
					// Not JSON (an SMS gateway's form body): kept as text.
				}
				const signature = req.headers["x-tern-signature"] as string | undefined;
				receiver.requests.push({
					method: req.method ?? "",
					path: req.url ?? "",
					headers: req.headers,
					raw,
					body,
					signed: receiver.secret === null ? null : verifySignature(signature, raw, receiver.secret)
				});
				res.writeHead(receiver.answers.shift() ?? 200, { "content-type": "application/json" }).end("{}");
				receiver.emit("request");
			});
		});
		await new Promise<void>(resolve => receiver.server.listen(0, "127.0.0.1", resolve));
		receiver.url = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}`;
		return receiver;
	}

	/** Resolves once `condition` holds over what came, checked as each request arrives. */
	until(condition: (requests: ReceivedRequest[]) => boolean, timeoutMs = 10_000, what = "a request"): Promise<void> {
		return until(
			this,
			["request"],
			() => condition(this.requests),
			timeoutMs,
			() => `${what}; got ${JSON.stringify(this.requests.map(r => r.body))}`
		);
	}

	close(): Promise<void> {
		this.server.closeAllConnections();
		return new Promise(resolve => this.server.close(() => resolve()));
	}
}

export class SmtpSink extends EventEmitter {
	readonly messages: ParsedMail[] = [];
	port = 0;
	private server!: SMTPServer;

	static async start(): Promise<SmtpSink> {
		const sink = new SmtpSink();
		sink.server = new SMTPServer({
			authOptional: true,
			disabledCommands: ["STARTTLS"],
			logger: false,
			onData(stream, _session, callback) {
				simpleParser(stream)
					.then(mail => {
						sink.messages.push(mail);
						sink.emit("message");
						callback();
					})
					.catch(err => callback(err as Error));
			}
		});
		await new Promise<void>(resolve => sink.server.listen(0, "127.0.0.1", () => resolve()));
		sink.port = (sink.server.server.address() as AddressInfo).port;
		return sink;
	}

	until(condition: (messages: ParsedMail[]) => boolean, timeoutMs = 10_000, what = "a message"): Promise<void> {
		return until(
			this,
			["message"],
			() => condition(this.messages),
			timeoutMs,
			() => `${what}; got ${JSON.stringify(this.messages.map(m => m.subject))}`
		);
	}

	close(): Promise<void> {
		return new Promise(resolve => this.server.close(() => resolve()));
	}
}
