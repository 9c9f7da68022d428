/**
 * The client follow channel: users follow a task live on socket.io `/client` (`subscribe`
 * `{ taskId }` → `status` and `progress` events) or on a raw WebSocket `/ws/client/:taskId`
 * (the seed's SYNC_WEBSOCKET mode). Each follower first gets the task's current status.
 */
import { call } from "../../lib/actions.ts";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { ServiceBroker } from "moleculer";
import type { Namespace, Server as IoServer, Socket } from "socket.io";
import type { WebSocket, WebSocketServer } from "ws";
import type {
	ClientClientToServer,
	ClientServerToClient,
	Principal,
	TaskProgressEvent,
	TaskQueryView,
	TaskStatusEvent
} from "../../lib/contracts.ts";
import { Errors } from "../../lib/errors.ts";
import { bearer, verifyUser } from "./admission.ts";
import { checkDepth, socketError } from "./messages.ts";
import { refusal } from "./socketio.ts";
import { refuseUpgrade } from "./websocket.ts";
import { Watchers } from "./watchers.ts";

type ClientSocket = Socket<ClientClientToServer, ClientServerToClient>;
type ClientNamespace = Namespace<ClientClientToServer, ClientServerToClient>;

function statusFromView(view: TaskQueryView): TaskStatusEvent {
	return {
		taskId: view.taskId,
		status: view.status,
		attempt: view.attempt,
		terminalId: null,
		at: view.updatedAt,
		data: view.data,
		error: view.error,
		exitCode: view.exitCode
	};
}

export class FollowChannel {
	private readonly broker: ServiceBroker;
	private ns: ClientNamespace | null = null;
	/** Raw WebSocket followers by task id. */
	private readonly sockets = new Map<string, Set<WebSocket>>();
	/** Sockets that follow every change (`watch`). */
	readonly watchers = new Watchers();

	constructor(broker: ServiceBroker) {
		this.broker = broker;
	}

	private async currentStatus(taskId: string, principal: Principal): Promise<TaskStatusEvent> {
		const view = await call(this.broker, "dispatcher.query", { taskId }, { meta: { principal } });
		return statusFromView(view);
	}

	/** Serves followers on socket.io `/client`. */
	attach(io: IoServer): void {
		const ns: ClientNamespace = (this.ns = io.of("/client"));
		ns.use((socket, next) => {
			const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token ?? socket.handshake.query.token;
			verifyUser(this.broker, token).then(
				principal => {
					socket.data.principal = principal;
					next();
				},
				err => next(refusal(err))
			);
		});
		ns.on("connection", (socket: ClientSocket) => {
			this.watchers.attach(ns, socket);
			socket.on("subscribe", (msg, reply) => {
				const fail = (err: unknown) => {
					const error = socketError(err, "subscribe");
					socket.emit("error", error);
					if (typeof reply === "function") reply({ ok: false, error });
				};
				try {
					checkDepth([msg]);
				} catch (err) {
					return fail(err);
				}
				const taskId = (msg as { taskId?: unknown } | undefined)?.taskId;
				if (typeof taskId !== "string" || taskId === "")
					return fail(
						Errors.validation("'taskId' is required", [{ field: "taskId", message: "'taskId' is required" }])
					);
				this.currentStatus(taskId, socket.data.principal as Principal).then(status => {
					void socket.join(`task:${taskId}`);
					if (typeof reply === "function") reply({ ok: true, taskId });
					socket.emit("status", status);
				}, fail);
			});
			socket.on("unsubscribe", (msg, reply) => {
				const taskId = (msg as { taskId?: unknown } | undefined)?.taskId;
				if (typeof taskId === "string") void socket.leave(`task:${taskId}`);
				if (typeof reply === "function") reply({ ok: true });
			});
		});
	}

	/** Lets a follower in on `/ws/client/:taskId`, or refuses the upgrade. */
	async upgrade(wss: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer, taskId: string): Promise<void> {
		let status: TaskStatusEvent;
		try {
			status = await this.currentStatus(taskId, await verifyUser(this.broker, bearer(req)));
		} catch (err) {
			return refuseUpgrade(socket, err);
		}
		wss.handleUpgrade(req, socket, head, ws => {
			let followers = this.sockets.get(taskId);
			if (!followers) this.sockets.set(taskId, (followers = new Set()));
			followers.add(ws);
			ws.on("close", () => {
				followers.delete(ws);
				if (followers.size === 0 && this.sockets.get(taskId) === followers) this.sockets.delete(taskId);
			});
			ws.on("error", () => undefined);
			ws.send(JSON.stringify({ type: "status", ...status }));
		});
	}

	/** A task's change to whoever follows it here. */
	status(event: TaskStatusEvent): void {
		const room = `task:${event.taskId}`;
		// Most tasks have no follower: skip socket.io's encoding of a packet for an empty room.
		if (this.ns?.adapter.rooms.has(room)) this.ns.to(room).emit("status", event);
		this.sendRaw(event.taskId, { type: "status", ...event });
	}

	progress(event: TaskProgressEvent): void {
		this.ns?.to(`task:${event.taskId}`).emit("progress", event);
		this.sendRaw(event.taskId, { type: "progress", ...event });
	}

	private sendRaw(taskId: string, message: Record<string, unknown>): void {
		const followers = this.sockets.get(taskId);
		if (!followers) return;
		const text = JSON.stringify(message);
		for (const ws of followers) ws.send(text);
	}

	close(): void {
		this.watchers.close();
		this.ns?.disconnectSockets(true);
	}
}
