/**
 * The raw WebSocket transport: HTTP upgrades to `/ws/terminal/:terminalId` (terminal sessions,
 * `{ "type": … }` JSON messages) and `/ws/client/:taskId` (followers, see followers.ts). Every
 * upgrade is answered: accepted, or refused with an HTTP status, whatever its URL holds.
 */
import http, { type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { Errors, toErrorPayload } from "../../lib/errors.ts";
import { bearer, parseCapabilities } from "./admission.ts";
import type { TerminalHub } from "./hub.ts";
import { parseMessage, socketError } from "./messages.ts";
import { TerminalSession, type OutboundEvent, type SessionInfo } from "./sessions.ts";

export class WebSocketSession extends TerminalSession {
	readonly transport = "websocket" as const;
	private readonly ws: WebSocket;

	constructor(ws: WebSocket, info: SessionInfo) {
		super(info);
		this.ws = ws;
	}

	send(message: OutboundEvent): void {
		if (this.ws.readyState !== this.ws.OPEN) return;
		switch (message.event) {
			case "task":
				this.ws.send(JSON.stringify({ type: "task", task: message.data }));
				break;
			// As every error a raw socket is told: `type` says it is one, `errorType` which.
			case "error":
				this.ws.send(JSON.stringify({ ...message.data, type: "error", errorType: message.data.type }));
				break;
			default:
				this.ws.send(JSON.stringify({ type: message.event, ...message.data }));
		}
	}

	close(reason: string, policy = false): void {
		this.ws.close(policy ? 1008 : 1000, reason.slice(0, 120));
	}
}

/** Refuses a WebSocket upgrade with an HTTP status and the error as JSON, and closes the socket. */
export function refuseUpgrade(socket: Duplex, err: unknown): void {
	const payload = toErrorPayload(err);
	const code = payload.code >= 400 && payload.code < 600 ? payload.code : 500;
	const body = JSON.stringify(payload);
	// A RATE_LIMITED or GATEWAY_BUSY refusal says when to come back, as REST's does (whole seconds).
	const data = payload.data as { retryAfter?: unknown; retryAfterMs?: unknown } | undefined;
	const seconds =
		payload.type === "RATE_LIMITED" && typeof data?.retryAfter === "number"
			? data.retryAfter
			: payload.type === "GATEWAY_BUSY" && typeof data?.retryAfterMs === "number"
				? Math.ceil(data.retryAfterMs / 1000)
				: null;
	const retry = seconds === null ? "" : `Retry-After: ${seconds}\r\n`;
	socket.end(
		`HTTP/1.1 ${code} ${http.STATUS_CODES[code] ?? "Error"}\r\nContent-Type: application/json\r\n${retry}` +
			`Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
	);
}

/** Where an upgrade goes: a channel and the id in its path, socket.io's own, or why nowhere. */
export type UpgradeTarget =
	{ channel: "terminal" | "client"; id: string } | { channel: "socket.io" } | { channel: null; error: Error };

/** Reads an upgrade's URL; never throws, whatever the URL (a bad percent-encoding is a 400). */
export function upgradeTarget(url: string | undefined): UpgradeTarget {
	let path: string;
	try {
		path = new URL(url ?? "/", "http://x").pathname;
	} catch {
		return { channel: null, error: Errors.badRequest("The upgrade's URL is not valid") };
	}
	if (path.startsWith("/socket.io/")) return { channel: "socket.io" };
	const match = /^\/ws\/(terminal|client)\/([^/]+)\/?$/.exec(path);
	if (!match) return { channel: null, error: Errors.badRequest(`No WebSocket endpoint at '${path}'`) };
	const channel = match[1] as "terminal" | "client";
	try {
		return { channel, id: decodeURIComponent(match[2]) };
	} catch {
		const what = channel === "terminal" ? "terminal id" : "task id";
		return { channel: null, error: Errors.badRequest(`The ${what} in '${path}' is not valid percent-encoding`) };
	}
}

export function createWebSocketServer(maxMessageBytes: number): WebSocketServer {
	return new WebSocketServer({ noServer: true, maxPayload: maxMessageBytes });
}

/** Lets a terminal in on `/ws/terminal/:terminalId`, or refuses the upgrade. */
export async function upgradeTerminal(
	hub: TerminalHub,
	wss: WebSocketServer,
	req: IncomingMessage,
	socket: Duplex,
	head: Buffer,
	terminalId: string
): Promise<void> {
	let admitted;
	const query = new URL(req.url ?? "/", "http://x").searchParams;
	try {
		admitted = await hub.admit(bearer(req), terminalId, query.get("concurrency") ?? undefined);
	} catch (err) {
		return refuseUpgrade(socket, err);
	}
	const { terminal, concurrency } = admitted;
	wss.handleUpgrade(req, socket, head, ws => {
		const session = new WebSocketSession(ws, {
			terminalId: terminal.id,
			concurrency,
			labels: terminal.labels,
			capabilities: parseCapabilities(query.get("capabilities") ?? undefined)
		});
		const sendError = (err: unknown, event?: string) => {
			if (ws.readyState !== ws.OPEN) return;
			const error = socketError(err, event);
			ws.send(JSON.stringify({ ...error, type: "error", errorType: error.type }));
		};
		ws.on("message", (raw, isBinary) => {
			session.touch();
			const text = isBinary ? Buffer.from(raw as Buffer).toString("utf8") : raw.toString();
			const parsed = parseMessage(text);
			if (!parsed.ok) return sendError(parsed.error, parsed.event);
			hub.inbound(session, parsed.type, parsed.message).catch(err => sendError(err, parsed.type));
		});
		// 1000 (normal), 1001 (going away) and 1005 (a close frame without a code) are a clean close;
		// 1006 (no close frame) and the rest, a broken connection.
		ws.on(
			"close",
			code => void hub.unregister(session, code === 1000 || code === 1001 || code === 1005 ? "normal" : "transport_error")
		);
		ws.on("error", err => hub.logger.debug("Terminal socket error", err));
		void hub.register(session);
	});
}
